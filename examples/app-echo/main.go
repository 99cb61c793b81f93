// Command app-echo is an example application backend for Bachata's "app"
// messages (DIMP customized content). It answers every mod and act of one
// app with {"echo":<extra>,"act":"<act>","mod":"<mod>","from":"<sender>"}.
// See README.md and docs/protocol.md, "app".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "app-echo:", err)
		os.Exit(1)
	}
}

// config is the command line; every flag has an environment variable.
type config struct {
	// NATSURL is the NATS server (flag -nats-url, NATS_URL, default
	// nats://127.0.0.1:4222).
	NATSURL string
	// Prefix starts every subject, as the router's (flag -prefix,
	// BACHATA_NATS_PREFIX, default "bachata").
	Prefix string
	// App is the application ID answered (flag -app, APP_ECHO_APP, default
	// "chat.example.echo").
	App string
	// Queue is the queue group, so that one instance answers each request
	// (flag -queue, APP_ECHO_QUEUE, default "app-echo").
	Queue string
	// DrainTimeout bounds the graceful stop (flag -drain-timeout,
	// APP_ECHO_DRAIN_TIMEOUT, default 10s).
	DrainTimeout time.Duration
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	env := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	fs.StringVar(&c.NATSURL, "nats-url", env("NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL (env NATS_URL)")
	fs.StringVar(&c.Prefix, "prefix", env("BACHATA_NATS_PREFIX", "bachata"), "prefix of every NATS subject, as the router's (env BACHATA_NATS_PREFIX)")
	fs.StringVar(&c.App, "app", env("APP_ECHO_APP", "chat.example.echo"), "application ID to answer (env APP_ECHO_APP)")
	fs.StringVar(&c.Queue, "queue", env("APP_ECHO_QUEUE", "app-echo"), "queue group (env APP_ECHO_QUEUE)")
	drain := env("APP_ECHO_DRAIN_TIMEOUT", "10s")
	d, err := time.ParseDuration(drain)
	if err != nil {
		return config{}, fmt.Errorf("APP_ECHO_DRAIN_TIMEOUT %q: %w", drain, err)
	}
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", d, "bound on the graceful stop (env APP_ECHO_DRAIN_TIMEOUT)")
	if err := fs.Parse(args[1:]); err != nil {
		return config{}, err
	}
	if fs.NArg() != 0 {
		return config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return c, c.validate()
}

// validate reports every bad setting at once.
func (c config) validate() error {
	var errs []error
	if c.Prefix == "" || strings.ContainsAny(c.Prefix, " \t*>") || strings.Contains(c.Prefix, "..") ||
		strings.HasPrefix(c.Prefix, ".") || strings.HasSuffix(c.Prefix, ".") {
		errs = append(errs, fmt.Errorf("prefix %q: want dot-separated tokens without spaces or wildcards", c.Prefix))
	}
	if !validApp(c.App) {
		errs = append(errs, fmt.Errorf("app %q: want 1-128 bytes of dot-separated labels of a-z 0-9 '-'", c.App))
	}
	if c.Queue == "" || strings.ContainsAny(c.Queue, " \t*>") {
		errs = append(errs, fmt.Errorf("queue %q: want a name without spaces or wildcards", c.Queue))
	}
	if c.DrainTimeout <= 0 {
		errs = append(errs, fmt.Errorf("drain-timeout %s: want > 0", c.DrainTimeout))
	}
	return errors.Join(errs...)
}

// validApp applies the protocol's rule for app IDs (docs/protocol.md,
// "app"): a client can only reach an app that passes it.
func validApp(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	return true
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	nc, err := nats.Connect(cfg.NATSURL,
		nats.Name("app-echo"),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.WarnContext(ctx, "nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			logger.InfoContext(ctx, "nats reconnected", "url", c.ConnectedUrlRedacted())
		}),
	)
	if err != nil {
		return fmt.Errorf("nats connect %s: %w", cfg.NATSURL, err)
	}
	return serve(ctx, nc, cfg, logger)
}
