package idle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/bachata-chat/bachata/tools/load/internal/client"
	"github.com/bachata-chat/bachata/tools/load/internal/token"
)

// closeWait bounds how long a worker waits for its readers to end after it
// closed every connection.
const closeWait = 30 * time.Second

// Event is a worker's report to the parent, one JSON line on its stdout.
type Event struct {
	// Kind is EventConnected or EventDone.
	Kind string `json:"event"`
	// OK and Failed count the connects (EventConnected).
	OK     int `json:"ok,omitempty"`
	Failed int `json:"failed,omitempty"`
	// FirstError is the first connect error, if any.
	FirstError string `json:"firstError,omitempty"`
	// Seconds is how long connecting took.
	Seconds float64 `json:"seconds,omitempty"`
	// Pings and Frames count what the connections received (EventDone).
	Pings  int64 `json:"pings,omitempty"`
	Frames int64 `json:"frames,omitempty"`
	// Lost counts connections that ended before the release, and
	// LostReason says why the first did.
	Lost       int64  `json:"lost,omitempty"`
	LostReason string `json:"lostReason,omitempty"`
}

// The kinds of Event.
const (
	// EventConnected: every connect of the worker has finished.
	EventConnected = "connected"
	// EventDone: every connection is closed; the worker exits.
	EventDone = "done"
)

// Work runs one worker's share: it opens n connections, users first …
// first+n-1, reports EventConnected, keeps them until released is closed
// (or ctx ends), closes them and reports EventDone.
func Work(ctx context.Context, c Config, first, n int, released <-chan struct{}, emit func(Event) error) error {
	minter, err := token.NewMinter(c.Secret, c.Hold+24*time.Hour)
	if err != nil {
		return err
	}
	var (
		stats   client.Stats
		readers sync.WaitGroup

		// mu guards what the dials and the readers record.
		mu       sync.Mutex
		conns    = make([]*client.Conn, 0, n)
		firstErr error
		lost     int64
		reason   string
	)
	start := time.Now()
	sem := make(chan struct{}, c.Parallel)
	var dials sync.WaitGroup
	for i := range n {
		idx := first + i
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		dials.Go(func() {
			defer func() { <-sem }()
			conn, err := dial(ctx, c, minter, idx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			conns = append(conns, conn)
			readers.Go(func() {
				err := conn.Run(&stats)
				if errors.Is(err, client.ErrClosedHere) {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if lost++; reason == "" {
					reason = err.Error()
				}
			})
		})
	}
	dials.Wait()
	// Every dial is done: conns no longer changes.
	ev := Event{Kind: EventConnected, OK: len(conns), Failed: n - len(conns), Seconds: time.Since(start).Seconds()}
	if firstErr != nil {
		ev.FirstError = firstErr.Error()
	}
	if err := emit(ev); err != nil {
		closeAll(conns)
		return err
	}

	select {
	case <-released:
	case <-ctx.Done():
	}
	closeAll(conns)
	done := make(chan struct{})
	go func() { readers.Wait(); close(done) }()
	t := time.NewTimer(closeWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
	mu.Lock()
	ev = Event{Kind: EventDone, Pings: stats.Pings.Load(), Frames: stats.Frames.Load(), Lost: lost, LostReason: reason}
	mu.Unlock()
	return emit(ev)
}

func dial(ctx context.Context, c Config, minter *token.Minter, idx int) (*client.Conn, error) {
	tok, err := minter.Mint(c.UserPrefix + strconv.Itoa(idx))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.ConnectTimeout)
	defer cancel()
	return client.Dial(ctx, client.Options{URL: c.Gateway, Token: tok, Source: c.Sources[idx%len(c.Sources)]})
}

func closeAll(conns []*client.Conn) {
	for _, c := range conns {
		_ = c.Close()
	}
}

// WorkerMain is a worker process: it reads its share from c, reports on
// out as JSON lines, and is released when in ends (the parent closes it,
// or the parent died).
func WorkerMain(ctx context.Context, c Config, in io.Reader, out io.Writer) error {
	released := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, in)
		close(released)
	}()
	enc := json.NewEncoder(out)
	return Work(ctx, c, c.WorkerFirst, c.Conns, released, func(e Event) error {
		if err := enc.Encode(e); err != nil {
			return fmt.Errorf("report to the parent: %w", err)
		}
		return nil
	})
}
