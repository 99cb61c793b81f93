// Package routerd runs a router process. The router binary is Run with the
// built-in routes; a custom router binary registers its own routes first
// and then calls Run, so its routes can be placed in the chain by the
// routes file (BACHATA_ROUTES_FILE) like the built-in ones:
//
//	func main() {
//		reg := chain.NewRegistry()
//		if err := reg.Register("profanity", newProfanity); err != nil { … }
//		if err := routerd.Run(context.Background(), os.Args, os.Getenv, os.Stderr, reg); err != nil {
//			fmt.Fprintln(os.Stderr, "router:", err)
//			os.Exit(1)
//		}
//	}
package routerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"syscall"

	libconfig "github.com/bachata-chat/bachata/libs/config"
	"github.com/bachata-chat/bachata/libs/obs"
	"github.com/bachata-chat/bachata/services/router/chain"
	"github.com/bachata-chat/bachata/services/router/internal/app"
	"github.com/bachata-chat/bachata/services/router/internal/config"
)

// Run configures the router from args (with the program name first) and
// getenv, builds its chain from reg, and serves until SIGINT or SIGTERM or
// until ctx ends. Bad configuration, including a routes file naming a
// route reg does not hold, is an error before anything is served; -h
// prints the settings and returns nil.
func Run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, reg *chain.Registry) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg, set, err := config.Load(args[1:], getenv)
	if errors.Is(err, libconfig.ErrHelp) {
		fmt.Fprintln(stderr, "Usage of router:")
		set.Usage(stderr)
		return nil
	}
	if err != nil {
		return fmt.Errorf("invalid configuration (see -h):\n%w", err)
	}
	logger, err := obs.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	tracing, err := obs.SetupTracing(ctx, "router", getenv, logger)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	// Last, after the router stopped: the spans of the drain get out too.
	defer flushTraces(ctx, tracing, logger)
	a, err := app.New(ctx, cfg, logger, reg)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// flushTraces exports the spans still buffered, within obs.FlushTimeout.
func flushTraces(ctx context.Context, t *obs.Tracing, logger *slog.Logger) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), obs.FlushTimeout)
	defer cancel()
	if err := t.Shutdown(fctx); err != nil {
		logger.WarnContext(ctx, "traces not flushed", "err", err)
	}
}
