// Command presence runs the presence service: which devices are online on
// which gateway, gateway leases and crash detection, and presence events.
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

	"github.com/redis/go-redis/v9"

	"github.com/bachata-chat/bachata/libs/obs"
	"github.com/bachata-chat/bachata/services/presence/internal/app"
	"github.com/bachata-chat/bachata/services/presence/internal/config"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "presence:", err)
		os.Exit(1)
	}
}

// run is main without the exit, so tests can drive it.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg, err := config.Load(args[1:], getenv)
	if errors.Is(err, config.ErrHelp) {
		config.Usage(stderr, getenv)
		return nil
	}
	if err != nil {
		return err
	}
	logger, err := obs.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	// go-redis logs its pool's dial failures through a process-wide logger
	// that writes plain text to stderr; route them into ours. Only main sets
	// process-wide state.
	redis.SetLogger(redisLogger{logger})
	tracing, err := obs.SetupTracing(ctx, "presence", getenv, logger)
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

// redisLogger adapts go-redis's logging to slog, keeping the message static.
type redisLogger struct{ logger *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.logger.WarnContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
}
