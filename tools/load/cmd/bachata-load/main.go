// Command bachata-load is Bachata's load tool. It only ever connects to
// addresses in 127.0.0.0/8: it measures a suite running on this machine.
//
//	bachata-load idle [flags]   N idle WebSocket connections to one gateway,
//	                            and the gateway's memory per connection
//	bachata-load direct [flags] sender → receiver pairs, every message
//	                            accounted for, with latencies
//	bachata-load group [flags]  one sender, a room of M members
//	bachata-load storm [flags]  connects and disconnects at a steady rate
//
// Run `bachata-load idle -h` for the flags; docs/benchmarks.md has the
// commands behind every published figure.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/bachata-chat/bachata/tools/load/internal/idle"
	"github.com/bachata-chat/bachata/tools/load/internal/storm"
	"github.com/bachata-chat/bachata/tools/load/internal/traffic"
)

const usage = `usage: bachata-load <scenario> [flags]

scenarios:
  idle    open N idle connections to one gateway and report its memory per connection
  direct  P sender/receiver pairs: sent, 100s, delivered, duplicates, 300s, lost, latencies
  group   one sender to a room of M members: the same, with fan-out latency
  storm   connects and disconnects per second; achieved rates and failures by status/close code

Run bachata-load <scenario> -h for its flags.
`

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bachata-load:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return errors.New("no scenario given")
	}
	switch args[1] {
	case "idle":
		c, err := idle.ParseFlags(args[2:], getenv, stderr)
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		if err != nil {
			return err
		}
		if c.WorkerFirst >= 0 {
			return idle.WorkerMain(ctx, c, stdin, stdout)
		}
		_, err = idle.Run(ctx, c, idle.ExecStarter, stdout)
		return err
	case "direct", "group":
		c, err := traffic.ParseFlags(args[1], args[2:], getenv, stderr)
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		if err != nil {
			return err
		}
		_, err = traffic.Run(ctx, c, stdout)
		return err
	case "storm":
		c, err := storm.ParseFlags(args[2:], getenv, stderr)
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		if err != nil {
			return err
		}
		_, err = storm.Run(ctx, c, stdout)
		return err
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown scenario %q", args[1])
	}
}
