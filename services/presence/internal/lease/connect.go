package lease

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Heartbeat renews the gateway's lease for lease (DefaultLease when zero).
// known is false when the gateway had no lease — it is new, or its lease
// expired and was swept — and then it must Connect every connection it
// holds again.
func (t *Tracker) Heartbeat(ctx context.Context, gateway string, lease time.Duration) (known bool, err error) {
	if err := validID("gateway", gateway); err != nil {
		return false, fmt.Errorf("heartbeat: %w", err)
	}
	switch {
	case lease < 0:
		return false, fmt.Errorf("heartbeat: %w: lease %s is negative", ErrInvalid, lease)
	case lease > MaxLease:
		return false, fmt.Errorf("heartbeat: %w: lease %s is longer than %s", ErrInvalid, lease, MaxLease)
	case lease == 0:
		lease = t.lease
	}
	res, err := heartbeatScript.Run(ctx, t.rdb,
		[]string{t.keys.leases(), t.keys.epochs(), t.keys.seq()},
		gateway, t.now().Add(lease).UnixMilli()).Int64Slice()
	if err != nil {
		return false, t.redisErr(opHeartbeat, "renew lease", err)
	}
	if len(res) != 2 {
		return false, fmt.Errorf("heartbeat: script returned %d values, want 2", len(res))
	}
	known = res[0] == 1
	if !known {
		t.logger.InfoContext(ctx, "gateway lease started", "gateway", gateway, "epoch", res[1], "lease", lease)
	}
	return known, nil
}

// Release ends the gateway's lease now, when it shuts down cleanly: the
// lease's expiry moves to the past, so the next sweep by any instance
// claims it and removes what the gateway still records (normally nothing:
// its connections disconnected while it drained). A heartbeat after this
// would renew the lease, so the gateway releases only once its heartbeats
// have stopped. A gateway without a lease is left alone.
func (t *Tracker) Release(ctx context.Context, gateway string) error {
	if err := validID("gateway", gateway); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	if err := t.rdb.ZAddXX(ctx, t.keys.leases(), redis.Z{Score: 0, Member: gateway}).Err(); err != nil {
		return t.redisErr(opHeartbeat, "release lease", err)
	}
	t.logger.InfoContext(ctx, "gateway lease released", "gateway", gateway)
	return nil
}

// leaseEpoch returns the epoch of the gateway's current lease, or
// ErrUnknownGateway when it holds none. The epoch exists exactly while the
// lease does (heartbeat.lua and claim.lua change both together), so an
// expired lease that no sweep has claimed yet still counts: a sweep that
// claims it later will find whatever was recorded under it.
func (t *Tracker) leaseEpoch(ctx context.Context, op, gateway string) (string, error) {
	e, err := t.rdb.HGet(ctx, t.keys.epochs(), gateway).Result()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("%s: gateway %q: %w", op, gateway, ErrUnknownGateway)
	}
	if err != nil {
		return "", t.redisErr(op, "read lease", err)
	}
	return e, nil
}

// Connect records the connection as its device's current one, replacing an
// older connection of that device on any gateway, and publishes that the
// user came online if this is their first device. It fails with
// ErrUnknownGateway when the gateway holds no lease.
//
// The steps are ordered so that a sweep running at any moment between them
// cannot leave the device recorded on a dead lease: the connection goes
// into the gateway's set before the user's entry is written, so a sweep
// that claims the lease afterwards finds it; and the lease is checked again
// after the write, so a sweep that claimed it in between is noticed and the
// write undone. A Connect that fails half-way is safe to retry.
func (t *Tracker) Connect(ctx context.Context, c Connection) error {
	if err := c.validate("connect"); err != nil {
		return err
	}
	epoch, err := t.leaseEpoch(ctx, opConnect, c.Gateway)
	if err != nil {
		return err
	}
	if err := t.rdb.SAdd(ctx, t.keys.conns(c.Gateway, epoch), c.member()).Err(); err != nil {
		return t.redisErr(opConnect, "add to gateway set", err)
	}
	now := t.nowMs()
	res, err := connectScript.Run(ctx, t.rdb, []string{t.keys.devs(c.User), t.keys.seen(c.User)},
		c.Device, c.Gateway, c.ID, epoch, now).Slice()
	if err != nil {
		return t.redisErr(opConnect, "record device", err)
	}
	cameOnline, prev, err := parseConnectResult(res)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if prev != "" {
		t.forgetReplaced(ctx, c, epoch, prev)
	}
	if t.testHookRecorded != nil {
		t.testHookRecorded()
	}
	after, err := t.leaseEpoch(ctx, opConnect, c.Gateway)
	if err != nil && !errors.Is(err, ErrUnknownGateway) {
		return err
	}
	if after != epoch {
		return t.undoConnect(ctx, c, epoch, cameOnline)
	}
	if cameOnline {
		t.publishPresence(ctx, c.User, true, now)
	}
	return nil
}

// forgetReplaced takes the device's previous connection out of its
// gateway's set, so that gateway's sweep does not report it. Failing here
// does not fail the Connect: a stale set entry matches no device entry, so
// the sweep removes nothing for it and at most lists it in GatewayDown,
// which consumers ignore for a connection that is no longer current.
func (t *Tracker) forgetReplaced(ctx context.Context, c Connection, epoch, prev string) {
	old, err := parseEntry(prev)
	if err != nil {
		t.logger.WarnContext(ctx, "replaced a malformed device entry", "user", c.User, "device", c.Device, "err", err)
		return
	}
	if old.gateway == c.Gateway && old.conn == c.ID && old.epoch == epoch {
		return
	}
	member := Connection{User: c.User, Device: c.Device, ID: old.conn}.member()
	if err := t.rdb.SRem(ctx, t.keys.conns(old.gateway, old.epoch), member).Err(); err != nil {
		t.logger.WarnContext(ctx, "forget replaced connection", "gateway", old.gateway, "err", t.redisErr(opConnect, "forget replaced connection", err))
	}
}

// undoConnect removes a connection that was recorded while a sweep claimed
// its gateway's lease, and reports ErrUnknownGateway. Events are the net
// change: a user brought online by this Connect and offline by its undo saw
// no change at all.
func (t *Tracker) undoConnect(ctx context.Context, c Connection, epoch string, cameOnline bool) error {
	wentOffline, now, err := t.remove(ctx, opConnect, c, epoch)
	if err != nil {
		return err
	}
	// remove only cleans the set when it removed the entry; if the sweep
	// got there first, the member added by Connect may have come after the
	// sweep deleted the set, and would stay behind.
	if err := t.rdb.SRem(ctx, t.keys.conns(c.Gateway, epoch), c.member()).Err(); err != nil {
		t.logger.WarnContext(ctx, "forget undone connection", "gateway", c.Gateway, "err", t.redisErr(opConnect, "forget undone connection", err))
	}
	switch {
	case cameOnline && !wentOffline:
		t.publishPresence(ctx, c.User, true, now)
	case wentOffline && !cameOnline:
		t.publishPresence(ctx, c.User, false, now)
	}
	return fmt.Errorf("connect: gateway %q lease ended meanwhile: %w", c.Gateway, ErrUnknownGateway)
}

// Disconnect removes the connection if it is still its device's current
// one, and publishes that the user went offline if it was their last
// device. A disconnect of a connection that was already replaced or swept
// changes nothing and is not an error.
func (t *Tracker) Disconnect(ctx context.Context, c Connection) error {
	if err := c.validate("disconnect"); err != nil {
		return err
	}
	wentOffline, now, err := t.remove(ctx, opDisconnect, c, "")
	if err != nil {
		return err
	}
	t.touchSession(ctx, c.User, c.Device)
	if wentOffline {
		t.publishPresence(ctx, c.User, false, now)
	}
	return nil
}

// remove runs disconnect.lua for one connection (of lease epoch, or any
// epoch when empty) and takes it out of its gateway's set.
func (t *Tracker) remove(ctx context.Context, op string, c Connection, epoch string) (wentOffline bool, nowMs int64, err error) {
	nowMs = t.nowMs()
	res, err := disconnectScript.Run(ctx, t.rdb, []string{t.keys.devs(c.User), t.keys.seen(c.User)},
		c.Device, c.Gateway, c.ID, epoch, nowMs).Slice()
	if err != nil {
		return false, 0, t.redisErr(op, "remove device", err)
	}
	status, wentOffline, removedEpoch, err := parseDisconnectResult(res)
	if err != nil {
		return false, 0, fmt.Errorf("%s: %w", op, err)
	}
	if status == removalDone {
		if err := t.rdb.SRem(ctx, t.keys.conns(c.Gateway, removedEpoch), c.member()).Err(); err != nil {
			// The entry is gone; a stale set member only makes the
			// gateway's sweep try to remove it again, which matches nothing.
			t.logger.WarnContext(ctx, "forget disconnected connection", "gateway", c.Gateway, "err", t.redisErr(op, "forget connection", err))
		}
	}
	return wentOffline, nowMs, nil
}

func parseConnectResult(res []any) (cameOnline bool, prev string, err error) {
	if len(res) != 2 {
		return false, "", fmt.Errorf("connect script returned %d values, want 2", len(res))
	}
	online, ok1 := res[0].(int64)
	prev, ok2 := res[1].(string)
	if !ok1 || !ok2 {
		return false, "", fmt.Errorf("connect script returned %T, %T", res[0], res[1])
	}
	return online == 1, prev, nil
}

// removal is what disconnect.lua did with one connection.
type removal int

// The statuses disconnect.lua returns; see its header.
const (
	removalNone removal = 0
	removalDone removal = 1
	removalKept removal = 2
)

func parseDisconnectResult(res []any) (status removal, wentOffline bool, epoch string, err error) {
	if len(res) != 3 {
		return 0, false, "", fmt.Errorf("disconnect script returned %d values, want 3", len(res))
	}
	r, ok1 := res[0].(int64)
	o, ok2 := res[1].(int64)
	e, ok3 := res[2].(string)
	if !ok1 || !ok2 || !ok3 || r < 0 || r > 2 {
		return 0, false, "", fmt.Errorf("disconnect script returned %v", res)
	}
	return removal(r), o == 1, e, nil
}
