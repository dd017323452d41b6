// Package e2e holds the end-to-end tests: the whole application built by app.New
// (with app options as test seams) and served over loopback HTTP, and the scoville
// command itself, built once and run as an operator runs it.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// binDir holds the scoville binary that the tests of the command run.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "scoville-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// scovilleBinary builds the command (the module root, package main) once per test
// run, with the race detector when the tests have it, and returns its path.
func scovilleBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		path := filepath.Join(binDir, "scoville")
		args := []string{"build", "-o", path}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, ".")...)
		cmd.Dir = ".." // the module root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		binPath = path
	})
	require.NoError(t, buildErr)
	return binPath
}

// envList is env as a process environment, and nothing else: the command sees
// exactly the variables a test names.
func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// scoville runs `scoville args...` with exactly env, its stderr (and stdout) to
// out, until it exits or ctx ends; ending ctx sends SIGINT, as Ctrl-C does. It
// returns the exit code.
func scoville(t testing.TB, ctx context.Context, args []string, env map[string]string, out *os.File) int {
	t.Helper()
	cmd := exec.CommandContext(ctx, scovilleBinary(t), args...)
	cmd.Env = envList(env)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = time.Minute
	err := cmd.Run()
	if cmd.ProcessState == nil {
		// It never ran (an error, not a failing test: this may run on another goroutine).
		t.Errorf("scoville %v: %v", args, err)
		return -1
	}
	// After ctx ends, Run reports ctx's error even for a clean exit: the exit code
	// is the answer.
	return cmd.ProcessState.ExitCode()
}
