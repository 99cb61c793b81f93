// Command gateway runs the Bachata gateway: WebSocket termination, client
// authentication, sessions, ping/pong, and writing deliveries to sockets.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	libconfig "github.com/bachata-chat/bachata/libs/config"
	"github.com/bachata-chat/bachata/libs/obs"
	"github.com/bachata-chat/bachata/services/gateway/internal/app"
	"github.com/bachata-chat/bachata/services/gateway/internal/config"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

// run is main without the exit, so tests can call it.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg, set, err := config.Load(args[1:], getenv)
	if errors.Is(err, libconfig.ErrHelp) {
		fmt.Fprintln(stderr, "Usage of gateway (flags override BACHATA_* variables):")
		set.Usage(stderr)
		return nil
	}
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	logger, err := obs.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	tracing, err := obs.SetupTracing(ctx, "gateway", getenv, logger)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	// Last, after the gateway stopped: the spans of the drain get out too.
	defer flushTraces(ctx, tracing, logger)
	a, err := app.New(ctx, cfg, logger)
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
