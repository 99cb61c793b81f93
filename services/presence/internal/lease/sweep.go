package lease

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// claimBatch is the most gateways one claim takes; a pass claims again
	// while batches come back full, so a mass failure is still one pass.
	claimBatch = 32
	// scanBatch is the SSCAN hint and the size of one removal pipeline.
	scanBatch = 512
	// releaseTimeout bounds handing a failed claim back.
	releaseTimeout = time.Second
)

// claim is one expired lease a sweeper took.
type claim struct{ gateway, epoch string }

// member is the claim's entry in the sweeps set.
func (c claim) member() string { return c.gateway + sep + c.epoch }

// RunSweeper sweeps at once and then every interval until ctx ends, and
// refreshes the gauges after each pass. Every presence instance runs one;
// claims keep them from sweeping the same gateway twice. A failed pass is
// logged and retried on the next tick, so the sweeper never stops the
// service; it returns nil when ctx ends.
func (t *Tracker) RunSweeper(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("run sweeper: interval %s: want > 0", interval)
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if _, err := t.Sweep(ctx); err != nil && ctx.Err() == nil {
			t.logger.WarnContext(ctx, "sweep failed; retrying next interval", "err", err)
		}
		if err := t.refreshGauges(ctx); err != nil && ctx.Err() == nil {
			t.logger.WarnContext(ctx, "refresh presence gauges", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Sweep runs one pass: it claims the gateways whose lease expired, removes
// every connection recorded under the expired lease (only where it is still
// the device's current one), publishes offline events for the users left
// without a device, then GatewayDown, and finishes the claim. It returns how
// many gateways it swept. A gateway that fails is handed back and swept
// again by the next pass of any instance.
func (t *Tracker) Sweep(ctx context.Context) (int, error) {
	t.metrics.sweeps.Inc()
	swept := 0
	for {
		now := t.now()
		res, err := claimScript.Run(ctx, t.rdb,
			[]string{t.keys.leases(), t.keys.epochs(), t.keys.sweeps()},
			now.UnixMilli(), now.Add(t.claimFor).UnixMilli(), claimBatch).StringSlice()
		if err != nil {
			return swept, t.redisErr(opSweep, "claim", err)
		}
		var errs []error
		for i := 0; i+1 < len(res); i += 2 {
			c := claim{gateway: res[i], epoch: res[i+1]}
			if err := t.sweepGateway(ctx, c); err != nil {
				errs = append(errs, fmt.Errorf("sweep gateway %q: %w", c.gateway, err))
				t.release(ctx, c)
				continue
			}
			swept++
		}
		// A failed gateway was handed back with a deadline of now; claiming
		// again in this pass would only fail it again at once.
		if len(errs) > 0 {
			return swept, errors.Join(errs...)
		}
		if len(res)/2 < claimBatch {
			return swept, nil
		}
	}
}

// sweepGateway removes what one expired lease held and announces it.
func (t *Tracker) sweepGateway(ctx context.Context, c claim) error {
	key := t.keys.conns(c.gateway, c.epoch)
	var down []Connection
	seen := make(map[string]bool)
	var cursor uint64
	for {
		members, next, err := t.rdb.SScan(ctx, key, cursor, "", scanBatch).Result()
		if err != nil {
			return t.redisErr(opSweep, "scan connections", err)
		}
		batch := make([]Connection, 0, len(members))
		for _, m := range members {
			if seen[m] { // SSCAN may return an entry twice
				continue
			}
			seen[m] = true
			conn, err := parseMember(c.gateway, m)
			if err != nil {
				t.logger.WarnContext(ctx, "skip malformed connection entry", "gateway", c.gateway, "err", err)
				continue
			}
			batch = append(batch, conn)
		}
		gone, err := t.removeBatch(ctx, batch, c.epoch)
		if err != nil {
			return err
		}
		down = append(down, gone...)
		if next == 0 {
			break
		}
		cursor = next
	}
	if err := t.publishGatewayDown(ctx, c.gateway, down); err != nil {
		return err
	}
	if err := t.rdb.Del(ctx, key).Err(); err != nil {
		return t.redisErr(opSweep, "finish", err)
	}
	if err := t.rdb.ZRem(ctx, t.keys.sweeps(), c.member()).Err(); err != nil {
		return t.redisErr(opSweep, "finish", err)
	}
	t.metrics.expired.Inc()
	t.logger.InfoContext(ctx, "gateway lease expired; its connections are offline",
		"gateway", c.gateway, "epoch", c.epoch, "connections", len(down))
	return nil
}

// removeBatch removes connections of one lease epoch in one pipeline,
// publishes offline events for users left without a device, and returns the
// connections that are closed: removed now, or already gone (replaced, or
// removed by an earlier attempt of this sweep). It leaves out a connection
// its gateway recorded again under a newer lease, which is live; listing it
// in GatewayDown would make delivery detach a working connection.
// Removal only matches entries still recorded under that epoch, so running
// it twice changes nothing and publishes nothing the second time.
func (t *Tracker) removeBatch(ctx context.Context, conns []Connection, epoch string) ([]Connection, error) {
	if len(conns) == 0 {
		return nil, nil
	}
	now := t.nowMs()
	var cmds []*redis.Cmd
	for attempt := 0; ; attempt++ {
		pipe := t.rdb.Pipeline()
		cmds = make([]*redis.Cmd, len(conns))
		for i, c := range conns {
			cmds[i] = disconnectScript.EvalSha(ctx, pipe, []string{t.keys.devs(c.User), t.keys.seen(c.User)},
				c.Device, c.Gateway, c.ID, epoch, now)
		}
		_, err := pipe.Exec(ctx)
		if err == nil {
			break
		}
		// A restarted Redis has lost its script cache; a pipeline cannot fall
		// back to EVAL per command, so load once and run the batch again.
		if attempt == 0 && isNoScript(err) {
			if err := disconnectScript.Load(ctx, t.rdb).Err(); err != nil {
				return nil, t.redisErr(opSweep, "remove connections", err)
			}
			continue
		}
		return nil, t.redisErr(opSweep, "remove connections", err)
	}
	closed := make([]Connection, 0, len(conns))
	for i, cmd := range cmds {
		res, err := cmd.Slice()
		if err != nil {
			return nil, t.redisErr(opSweep, "remove connections", err)
		}
		status, wentOffline, _, err := parseDisconnectResult(res)
		if err != nil {
			return nil, fmt.Errorf("sweep remove: %w", err)
		}
		if wentOffline {
			t.publishPresence(ctx, conns[i].User, false, now)
		}
		if status != removalKept {
			closed = append(closed, conns[i])
		}
	}
	t.touchSessions(ctx, closed)
	return closed, nil
}

// touchSessions starts the session TTL again for devices whose gateway
// died, as Disconnect does for a clean close, so a client that reconnects
// elsewhere can resume. Failing only shortens those sessions.
func (t *Tracker) touchSessions(ctx context.Context, conns []Connection) {
	if len(conns) == 0 {
		return
	}
	pipe := t.rdb.Pipeline()
	for _, c := range conns {
		pipe.PExpire(ctx, t.keys.session(c.User, c.Device), t.sessionTTL)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.logger.WarnContext(ctx, "session expiry not extended after a sweep", "devices", len(conns),
			"err", t.redisErr(opSession, "extend sessions", err))
	}
}

func isNoScript(err error) bool {
	return errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT")
}

// release hands a claim back for the next pass. It runs even when the
// pass's context has ended (shutdown), so another instance need not wait
// for the claim deadline; if Redis is unreachable the deadline covers it.
func (t *Tracker) release(ctx context.Context, c claim) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	z := redis.Z{Score: float64(t.nowMs()), Member: c.member()}
	if err := t.rdb.ZAddXX(rctx, t.keys.sweeps(), z).Err(); err != nil {
		t.logger.WarnContext(ctx, "release sweep claim; it expires by itself", "gateway", c.gateway, "err", t.redisErr(opSweep, "release claim", err))
	}
}

// refreshGauges sets the gateway and device gauges from Redis. Every
// instance reports the same cluster-wide figures; the device count includes
// connections replaced so recently that their set entry is not gone yet.
func (t *Tracker) refreshGauges(ctx context.Context) error {
	epochs, err := t.rdb.HGetAll(ctx, t.keys.epochs()).Result()
	if err != nil {
		return t.redisErr(opGauges, "count connections", err)
	}
	var devices int64
	if len(epochs) > 0 {
		pipe := t.rdb.Pipeline()
		cards := make([]*redis.IntCmd, 0, len(epochs))
		for gw, e := range epochs {
			cards = append(cards, pipe.SCard(ctx, t.keys.conns(gw, e)))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return t.redisErr(opGauges, "count connections", err)
		}
		for _, c := range cards {
			devices += c.Val()
		}
	}
	t.metrics.gateways.Set(float64(len(epochs)))
	t.metrics.devices.Set(float64(devices))
	return nil
}
