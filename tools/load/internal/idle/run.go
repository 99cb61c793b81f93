package idle

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"time"

	"github.com/bachata-chat/bachata/tools/load/internal/probe"
)

// releaseWait bounds how long the parent waits for the workers to close
// their connections and exit once released.
const releaseWait = 2 * time.Minute

// Starter starts worker i of c and returns it; the parent uses
// ExecStarter, tests may run workers in-process.
type Starter func(ctx context.Context, c *Config, i int) (*Worker, error)

// Worker is a running worker as the parent sees it.
type Worker struct {
	// Events delivers the worker's reports; it is closed when the worker
	// stops reporting.
	Events <-chan Event
	// Release tells the worker to close its connections and end.
	Release func()
	// Wait waits for the worker to end, at most until ctx ends.
	Wait func(ctx context.Context) error
}

// ExecStarter starts worker i as a copy of this program (os.Executable)
// with the worker flags; the secret travels in its environment, its
// reports on its stdout, and closing its stdin releases it.
func ExecStarter(ctx context.Context, c *Config, i int) (*Worker, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this program to start workers: %w", err)
	}
	// Not tied to ctx: the worker must get the chance to close its
	// connections; Release and Wait end it.
	cmd := exec.CommandContext(context.WithoutCancel(ctx), exe, c.workerArgs(i)...) //nolint:gosec // this very program
	cmd.Env = append(os.Environ(), "BACHATA_JWT_SECRET="+c.Secret)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("worker %d stdin: %w", i, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("worker %d stdout: %w", i, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker %d: %w", i, err)
	}
	// A worker reports two events; the buffer holds both, so reading
	// never waits for the parent.
	events := make(chan Event, 2)
	exited := make(chan error, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			var e Event
			if json.Unmarshal(s.Bytes(), &e) == nil {
				select {
				case events <- e:
				default: // more than two: not a worker of this version
				}
			}
		}
		close(events)
		// Wait only once stdout is read to the end, as exec requires.
		exited <- cmd.Wait()
	}()
	return &Worker{
		Events:  events,
		Release: func() { _ = stdin.Close() },
		Wait: func(ctx context.Context) error {
			select {
			case err := <-exited:
				return err
			case <-ctx.Done():
				_ = cmd.Process.Kill()
				return fmt.Errorf("worker %d did not end: killed: %w", i, ctx.Err())
			}
		},
	}, nil
}

// Report is what a run found.
type Report struct {
	// Connected and Failed count connections that reached the ready frame
	// and those that did not.
	Connected, Failed int
	// FirstError is one connect error, when any failed.
	FirstError string
	// ConnectTime is from the first connect to the last ready frame.
	ConnectTime time.Duration
	// Before and Idle are the gateway's readings before connecting and
	// once every connection was up and idle; GCBefore and GCIdle say
	// whether a GC cycle completed right before each.
	Before, Idle     probe.Reading
	GCBefore, GCIdle bool
	// Pings, Frames and Lost are the workers' totals over the hold.
	Pings, Frames, Lost int64
	// LostReason is why one lost connection ended.
	LostReason string
}

// Run is the parent: readings, workers, hold, release. It writes its
// progress and the report to out.
func Run(ctx context.Context, c Config, start Starter, out io.Writer) (rep Report, err error) {
	p := &probe.Probe{PID: c.GatewayPID, MetricsURL: c.MetricsURL, Client: &http.Client{Timeout: 10 * time.Second}}
	fmt.Fprintf(out, "idle: %d connections to %s from %d source addresses, %d worker processes, %d connects in flight each\n",
		c.Conns, c.Gateway, len(c.Sources), c.Procs, c.Parallel)
	if rep.Before, rep.GCBefore, err = read(ctx, p, c.GCWait); err != nil {
		return rep, fmt.Errorf("reading before: %w", err)
	}
	printReading(out, "before", rep.Before, rep.GCBefore)

	workers := make([]*Worker, 0, c.Procs)
	defer func() {
		// Release whatever was started, whatever happened.
		for _, w := range workers {
			w.Release()
		}
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseWait)
		defer cancel()
		for _, w := range workers {
			if werr := w.Wait(wctx); werr != nil && err == nil {
				err = werr
			}
		}
	}()
	began := time.Now()
	for i := range c.Procs {
		w, err := start(ctx, &c, i)
		if err != nil {
			return rep, err
		}
		workers = append(workers, w)
	}
	for i, w := range workers {
		e, err := next(ctx, w, EventConnected)
		if err != nil {
			return rep, fmt.Errorf("worker %d: %w", i, err)
		}
		rep.Connected += e.OK
		rep.Failed += e.Failed
		if rep.FirstError == "" {
			rep.FirstError = e.FirstError
		}
	}
	rep.ConnectTime = time.Since(began)
	allUp := time.Now()
	fmt.Fprintf(out, "connected %d of %d (%d failed) in %s: %.0f connections/s\n",
		rep.Connected, c.Conns, rep.Failed, rep.ConnectTime.Round(time.Millisecond), float64(rep.Connected)/rep.ConnectTime.Seconds())
	if rep.FirstError != "" {
		fmt.Fprintf(out, "first connect error: %s\n", rep.FirstError)
	}
	if rep.Connected == 0 {
		return rep, errors.New("no connection succeeded")
	}

	if err := sleep(ctx, c.Settle); err != nil {
		return rep, err
	}
	if rep.Idle, rep.GCIdle, err = read(ctx, p, c.GCWait); err != nil {
		return rep, fmt.Errorf("idle reading: %w", err)
	}
	printReading(out, "idle", rep.Idle, rep.GCIdle)
	printPerConn(out, rep)

	if err := sleep(ctx, c.Hold-time.Since(allUp)); err != nil {
		return rep, err
	}
	for _, w := range workers {
		w.Release()
	}
	for i, w := range workers {
		e, err := next(ctx, w, EventDone)
		if err != nil {
			return rep, fmt.Errorf("worker %d: %w", i, err)
		}
		rep.Pings += e.Pings
		rep.Frames += e.Frames
		rep.Lost += e.Lost
		if rep.LostReason == "" {
			rep.LostReason = e.LostReason
		}
	}
	fmt.Fprintf(out, "held %s: %d connections lost, %d server pings answered, %d other frames\n",
		time.Since(allUp).Round(time.Second), rep.Lost, rep.Pings, rep.Frames)
	if rep.LostReason != "" {
		fmt.Fprintf(out, "first lost connection: %s\n", rep.LostReason)
	}
	return rep, err
}

// read takes a Reading after the gateway finished a GC cycle, waiting up to
// gcWait for one.
func read(ctx context.Context, p *probe.Probe, gcWait time.Duration) (probe.Reading, bool, error) {
	r, err := p.Read(ctx)
	if err != nil || gcWait <= 0 || p.MetricsURL == "" {
		return r, false, err
	}
	gc, err := p.WaitGC(ctx, r.GCCount, gcWait)
	if err != nil {
		return r, false, err
	}
	r, err = p.Read(ctx)
	return r, gc, err
}

// next waits for the worker's next event, which must be of kind.
func next(ctx context.Context, w *Worker, kind string) (Event, error) {
	select {
	case e, ok := <-w.Events:
		if !ok {
			return e, errors.New("ended without reporting (see its output above)")
		}
		if e.Kind != kind {
			return e, fmt.Errorf("reported %q, want %q", e.Kind, kind)
		}
		return e, nil
	case <-ctx.Done():
		return Event{}, fmt.Errorf("waiting for %q: %w", kind, ctx.Err())
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
}

func printReading(out io.Writer, name string, r probe.Reading, gc bool) {
	if r.RSS < 0 && r.HeapInuse < 0 {
		return
	}
	fmt.Fprintf(out, "gateway %-6s rss %s  heap in use %s  stacks %s  goroutines %s  (after a GC cycle: %t)\n",
		name, mib(r.RSS), mib(r.HeapInuse), mib(r.StackInuse), count(r.Goroutines), gc)
}

func printPerConn(out io.Writer, rep Report) {
	n := float64(rep.Connected)
	per := func(a, b int64) string {
		if a < 0 || b < 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2f KiB", float64(b-a)/n/1024)
	}
	fmt.Fprintf(out, "per connection (%d): rss %s  heap %s  stack %s  goroutines %s\n",
		rep.Connected, per(rep.Before.RSS, rep.Idle.RSS), per(rep.Before.HeapInuse, rep.Idle.HeapInuse),
		per(rep.Before.StackInuse, rep.Idle.StackInuse), perCount(rep.Before.Goroutines, rep.Idle.Goroutines, n))
}

func perCount(a, b int64, n float64) string {
	if a < 0 || b < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", float64(b-a)/n)
}

func mib(b int64) string {
	if b < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

func count(v int64) string {
	if v < 0 {
		return "n/a"
	}
	return fmt.Sprint(v)
}
