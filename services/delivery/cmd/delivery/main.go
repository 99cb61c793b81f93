// Command delivery runs the delivery service: one reliable queue per device
// in Redis, with acks, redelivery and receipts.
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

	"github.com/bachata-chat/bachata/libs/config"
	"github.com/bachata-chat/bachata/libs/obs"
	"github.com/bachata-chat/bachata/services/delivery/internal/app"
	deliveryconfig "github.com/bachata-chat/bachata/services/delivery/internal/config"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "delivery:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg, set, err := deliveryconfig.Load(args[1:], getenv)
	if errors.Is(err, config.ErrHelp) {
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
	tracing, err := obs.SetupTracing(ctx, "delivery", getenv, logger)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	// Last, after the service stopped: the spans of the drain get out too.
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
