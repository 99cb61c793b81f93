package app

import (
	"context"
	"sync"
	"time"

	presencev1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/presence/v1"
)

// heartbeat renews the gateway's presence lease every heartbeat interval
// until ctx ends, calling leased after the first renewal that succeeds:
// presence refuses connections of a gateway without a lease, so the gateway
// is not ready before it holds one. When presence answers known=false the lease had expired
// (presence marked this gateway's devices offline and delivery detached
// them), so every connection is announced again, in the background so the
// heartbeats go on meanwhile; at most one re-announcement runs at a time.
func (a *App) heartbeat(ctx context.Context, leased func()) {
	t := time.NewTicker(a.cfg.Heartbeat)
	defer t.Stop()
	var (
		wg           sync.WaitGroup
		reannouncing bool
		mu           sync.Mutex
	)
	defer wg.Wait()
	var once sync.Once
	for {
		known, ok := a.beat(ctx)
		if ok {
			once.Do(leased)
		}
		if ok && !known {
			mu.Lock()
			start := !reannouncing
			reannouncing = true
			mu.Unlock()
			if start {
				wg.Go(func() {
					defer func() { mu.Lock(); reannouncing = false; mu.Unlock() }()
					if err := a.ws.Reannounce(ctx); err != nil {
						a.log.WarnContext(ctx, "reannounce cut short", "err", err)
					}
				})
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// beat sends one heartbeat, bounded by the heartbeat interval so a slow
// presence never delays the next one. ok is false when it failed.
func (a *App) beat(ctx context.Context) (known, ok bool) {
	cctx, cancel := context.WithTimeout(ctx, a.cfg.Heartbeat)
	defer cancel()
	resp, err := a.presence.Heartbeat(cctx, &presencev1.HeartbeatRequest{
		GatewayId: a.cfg.GatewayID,
		LeaseMs:   millis(a.cfg.Lease()),
	})
	if err != nil {
		if ctx.Err() == nil {
			a.hbFailures.Inc()
			a.log.WarnContext(ctx, "presence heartbeat failed", "gateway", a.cfg.GatewayID, "err", err)
		}
		return false, false
	}
	if !resp.GetKnown() && a.ws.Connections() > 0 {
		a.log.InfoContext(ctx, "presence lease was not held; announcing connections again", "gateway", a.cfg.GatewayID, "connections", a.ws.Connections())
	}
	return resp.GetKnown(), true
}
