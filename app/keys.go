package app

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"

	"gorm.io/gorm"

	"github.com/scoville/scoville/config"
	"github.com/scoville/scoville/logging"
	"github.com/scoville/scoville/sealing"
)

const keysUsage = `usage: scoville keys generate | rotate | reencrypt [-batch N] | status
  generate   print a fresh DATA_ENCRYPTION_KEYS value
  rotate     print DATA_ENCRYPTION_KEYS (read from the environment, else from stdin)
             with a new primary key added; the old keys stay to read older data
  reencrypt  re-seal every encrypted column under the primary key (batched,
             resumable: run it again after an interruption), then print counts
  status     print, per encrypted column, how many values each key id sealed`

// RunKeys is the `keys` subcommand: it makes and rotates DATA_ENCRYPTION_KEYS and
// moves stored data to the primary key. Values go to stdout, nothing else does, so
// `scoville keys generate > file` captures exactly the secret.
func RunKeys(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, keysUsage)
		return 2
	}
	switch args[0] {
	case "generate":
		v, err := sealing.Generate()
		if err != nil {
			fmt.Fprintf(stderr, "scoville keys generate: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, v)
		return 0
	case "rotate":
		cfg, err := config.LoadKeys(getenv)
		if err != nil {
			fmt.Fprintf(stderr, "scoville keys rotate: %v\n", err)
			return 2
		}
		current := cfg.DataEncryptionKeys.Reveal()
		if current == "" {
			line, err := bufio.NewReader(io.LimitReader(stdin, 1<<20)).ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				fmt.Fprintf(stderr, "scoville keys rotate: read stdin: %v\n", err)
				return 1
			}
			current = strings.TrimSpace(line)
		}
		if current == "" {
			fmt.Fprintln(stderr, "scoville keys rotate: no current value: set DATA_ENCRYPTION_KEYS or pipe it on stdin")
			return 2
		}
		v, err := sealing.Rotate(current)
		if err != nil {
			fmt.Fprintf(stderr, "scoville keys rotate: DATA_ENCRYPTION_KEYS: %v\n", err)
			return 2
		}
		fmt.Fprintln(stdout, v)
		return 0
	case "reencrypt", "status":
		return runKeysWithDB(ctx, args[0], args[1:], getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, keysUsage)
		return 0
	}
	fmt.Fprintf(stderr, "scoville keys: unknown command %q\n%s\n", args[0], keysUsage)
	return 2
}

func runKeysWithDB(ctx context.Context, cmd string, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keys "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	batch := fs.Int("batch", 500, "rows re-sealed per transaction")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "scoville: refusing to start: invalid configuration:\n%v\n", err)
		return 2
	}
	logger := logging.New(stderr, cfg.LogLevel)
	db, err := openDB(ctx, cfg, logger)
	if err != nil {
		fmt.Fprintf(stderr, "scoville keys %s: %v\n", cmd, err)
		return 1
	}
	if sqlDB, err := db.DB(); err == nil {
		defer sqlDB.Close()
	}
	k, err := InstallDataKeys(db, cfg, logger)
	if err != nil {
		fmt.Fprintf(stderr, "scoville keys %s: %v\n", cmd, err)
		return 1
	}
	if cmd == "status" {
		return printCensus(ctx, db, k, stdout, stderr)
	}
	reports, err := sealing.Reencrypt(ctx, db, k, *batch, func(r sealing.ColumnReport) {
		logger.InfoContext(ctx, "reencrypt progress", "table", r.Table, "column", r.Name, "scanned", r.Scanned, "resealed", r.Resealed)
	})
	for _, r := range reports {
		fmt.Fprintf(stdout, "%s.%s: %d values, %d re-sealed under key %d\n", r.Table, r.Name, r.Scanned, r.Resealed, k.PrimaryKeyID())
	}
	if err != nil {
		fmt.Fprintf(stderr, "scoville keys reencrypt: stopped: %v (what is done stays done; run it again once fixed)\n", err)
		return 1
	}
	return printCensus(ctx, db, k, stdout, stderr)
}

// printCensus prints how many values each key sealed and fails when any is under a
// key other than the primary, so `keys status` can gate removing an old key.
func printCensus(ctx context.Context, db *gorm.DB, k *sealing.Keyring, stdout, stderr io.Writer) int {
	census, err := sealing.Census(ctx, db)
	if err != nil {
		fmt.Fprintf(stderr, "scoville keys: %v\n", err)
		return 1
	}
	stale := 0
	for _, col := range sealing.Columns {
		ids := make([]uint32, 0, len(census[col]))
		for id := range census[col] {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		parts := make([]string, 0, len(ids))
		for _, id := range ids {
			mark := ""
			if id == k.PrimaryKeyID() {
				mark = " (primary)"
			} else {
				stale += census[col][id]
			}
			parts = append(parts, fmt.Sprintf("key %d%s: %d", id, mark, census[col][id]))
		}
		if len(parts) == 0 {
			parts = append(parts, "empty")
		}
		fmt.Fprintf(stdout, "%s.%s: %s\n", col.Table, col.Name, strings.Join(parts, ", "))
	}
	if stale > 0 {
		fmt.Fprintf(stdout, "%d values are not under the primary key; run `scoville keys reencrypt`\n", stale)
		return 3
	}
	fmt.Fprintln(stdout, "every value is under the primary key")
	return 0
}

// InstallDataKeys parses DATA_ENCRYPTION_KEYS and installs it on db, so every sealed
// column opens and seals with it. Development without the variable uses the public
// development key set, said loudly; production never gets here without a real value
// (config.Load refuses).
func InstallDataKeys(db *gorm.DB, cfg *config.Config, logger *slog.Logger) (*sealing.Keyring, error) {
	value := cfg.DataEncryptionKeys.Reveal()
	if value == "" {
		if cfg.IsProduction() {
			return nil, errors.New("DATA_ENCRYPTION_KEYS is required in production")
		}
		logger.Warn("DATA_ENCRYPTION_KEYS is not set: personal data is sealed with the PUBLIC development key set " +
			"(development only; run `scoville keys generate` for a real one)")
		value = sealing.DevelopmentKeys
	}
	k, err := sealing.Parse(value)
	if err != nil {
		return nil, fmt.Errorf("DATA_ENCRYPTION_KEYS: %w", err)
	}
	if k.Development() && cfg.IsProduction() {
		return nil, errors.New("DATA_ENCRYPTION_KEYS is the public development key set, refused in production")
	}
	if err := sealing.Install(db, k); err != nil {
		return nil, err
	}
	return k, nil
}
