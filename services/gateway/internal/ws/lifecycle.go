package ws

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/bachata-chat/bachata/services/gateway/internal/drain"
	"github.com/bachata-chat/bachata/services/gateway/internal/wsio"
)

// reannounceParallel bounds the calls in flight while re-announcing every
// connection, so a gateway with many connections does not flood presence
// and delivery the moment they come back.
const reannounceParallel = 32

// Drain stops accepting connections (new upgrades get 503), closes every
// connection with 1012 in batches so clients do not all reconnect at once,
// and waits until every close path (presence Disconnect, delivery Detach)
// and every receipt confirmation has run. When ctx ends first, the
// remaining connections are closed at once and Drain returns ctx's error
// without waiting further.
func (s *Server) Drain(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()

	clients := s.reg.Snapshot()
	s.log.InfoContext(ctx, "draining websocket connections", "connections", len(clients))
	cutErr := drain.InBatches(ctx, clients, s.opts.DrainBatch, s.opts.DrainInterval, func(c *client) {
		c.close(wsio.CloseServiceRestart, "service restart")
	})

	done := make(chan struct{})
	go func() {
		s.conns.Wait()
		s.mu.Lock()
		s.acksClosed = true
		s.mu.Unlock()
		s.ackers.Wait()
		close(done)
	}()
	select {
	case <-done:
		return cutErr
	case <-ctx.Done():
		return fmt.Errorf("drain: connections still closing: %w", ctx.Err())
	}
}

// Reannounce connects every connection again with presence and attaches
// it again with delivery. The gateway calls it when presence reports its
// lease had expired: presence then marked these devices offline and
// delivery detached them, so without this they would stay online on the
// socket but receive nothing. Attach puts in-flight messages back at the
// head of the queue, so a client may see a message again (at least once
// on the wire after a failure).
func (s *Server) Reannounce(ctx context.Context) error {
	clients := s.reg.Snapshot()
	sem := make(chan struct{}, reannounceParallel)
	var (
		wg     sync.WaitGroup
		failed atomic.Int64
	)
	for _, c := range clients {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return fmt.Errorf("reannounce: %w", ctx.Err())
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if c.closed.Load() {
				return
			}
			cctx, cancel := context.WithTimeout(ctx, s.opts.RPCTimeout)
			defer cancel()
			if err := c.announce(cctx, false); err != nil {
				if ctx.Err() != nil {
					return // shutting down: the drain closes the connection anyway
				}
				// The client cannot be reached reliably any more; closing
				// with 1011 makes it reconnect and announce itself.
				s.log.WarnContext(ctx, "websocket reannounce failed", c.attrs("err", err)...)
				c.close(wsio.CloseInternalError, "session lost")
				failed.Add(1)
				return
			}
			if c.closed.Load() {
				// The connection closed while being announced; its close
				// path may have reached presence and delivery first, so
				// undo the announcement or the device stays online.
				c.detach()
			}
		})
	}
	wg.Wait()
	s.log.InfoContext(ctx, "websocket connections reannounced", "connections", len(clients), "failed", failed.Load())
	return nil
}

// Kick closes the connections this gateway holds for user (only device's
// when device is set) with 1008 "kicked", and reports how many it closed.
// Their close paths detach them as usual, so nothing queued is lost.
func (s *Server) Kick(user, device string) int {
	n := 0
	for _, c := range s.reg.User(user) {
		if device != "" && c.Key().Device != device {
			continue
		}
		c.close(wsio.ClosePolicyViolation, "kicked")
		n++
	}
	if n > 0 {
		s.log.Info("connections kicked", "user", user, "device", device, "connections", n)
	}
	return n
}
