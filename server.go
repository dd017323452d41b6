// Command scoville is the Scoville API server. With no argument it serves; the
// subcommands run one-off work with the same configuration:
//
//	scoville            serve the API (GraphQL, probes, metrics) and, unless
//	                    RUN_WORKERS=false, work the background queue
//	scoville work       work the background queue only (no API; metrics on METRICS_ADDR)
//	scoville migrate    apply pending database migrations, then exit
//	scoville seed       load the development catalog (refused in production)
//	scoville devidp     run the development OpenID Connect issuer (refused in production)
//	scoville keys ...   make, rotate and apply DATA_ENCRYPTION_KEYS (scoville keys help)
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/scoville/scoville/app"
	"github.com/scoville/scoville/config"
	"github.com/scoville/scoville/logging"
)

func main() {
	profileHeap()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stderr))
}

// run dispatches a subcommand and returns the process exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stderr *os.File) int {
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	if cmd == "devidp" {
		return app.RunDevIDP(ctx, getenv, stderr)
	}
	if cmd == "keys" {
		return app.RunKeys(ctx, args[1:], getenv, os.Stdin, os.Stdout, stderr)
	}
	if cmd == "help" || cmd == "-h" || cmd == "--help" {
		fmt.Fprintln(stderr, "usage: scoville [serve|work|migrate|seed|devidp|keys]")
		return 0
	}

	cfg, err := config.Load(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "scoville: refusing to start: invalid configuration:\n%v\n", err)
		return 2
	}
	logger := logging.New(stderr, cfg.LogLevel)

	switch cmd {
	case "serve":
		err = app.Serve(ctx, cfg, logger)
	case "work":
		err = app.Work(ctx, cfg, logger)
	case "migrate":
		err = app.Migrate(ctx, cfg, logger)
	case "seed":
		err = app.Seed(ctx, cfg, logger)
	default:
		fmt.Fprintf(stderr, "scoville: unknown command %q; usage: scoville [serve|work|migrate|seed|devidp|keys]\n", cmd)
		return 2
	}
	if err != nil {
		logger.ErrorContext(ctx, "scoville: "+cmd+" failed", "error", err.Error())
		return 1
	}
	return 0
}
