// Package shard runs the delivery instances' share of the queue shards.
//
// Devices are hashed to a fixed number of shards. Each shard is owned by
// one instance at a time, through a lease in Redis it renews; the owner
// alone pushes the shard's devices (so a device's deliveries have one
// publisher and keep their order) and runs its timers (redelivery,
// retention, undelivered reports). Instances register themselves and each
// takes about its share; when one dies, its leases lapse and the others
// take its shards within a lease period.
package shard

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bachata-chat/bachata/services/delivery/internal/queue"
)

// Publisher sends what a shard released: deliveries to the gateways
// holding the devices, dead letters and undelivered reports as events.
type Publisher interface {
	Publish(ctx context.Context, p queue.Pushed)
}

// Options configure an Owner.
type Options struct {
	// Instance names this instance in the registry and its leases; unique
	// per process.
	Instance string
	// Lease is how long a shard lease lasts without renewal; it is renewed
	// every Lease/3.
	Lease time.Duration
	// ExpireEvery is how often the timers of an owned shard run.
	ExpireEvery time.Duration
	// Batch bounds the devices one drain pushes and the entries one timer
	// run handles.
	Batch int
	// StatsEvery is how often each owned shard's sizes are read for the
	// gauges (the Owner is their prometheus.Collector); 0 reads none.
	StatsEvery time.Duration
}

// Owner keeps this instance's share of the shards and runs a worker for
// each shard it owns. It is a prometheus.Collector of the owned shards'
// sizes.
//
// mu and statsMu are never held together.
type Owner struct {
	store    *queue.Store
	blocking redis.Cmdable
	pub      Publisher
	opts     Options
	log      *slog.Logger

	mu    sync.Mutex
	owned map[int]*worker
	// releasing holds shards whose worker is stopping; they are not taken
	// again until it stopped and the lease is given up.
	releasing map[int]struct{}
	// stopping counts the goroutines that wait for workers to stop.
	stopping sync.WaitGroup

	// statsMu guards stats: the last sizes read of each owned shard.
	statsMu sync.Mutex
	stats   map[int]queue.ShardStats
}

// New returns an Owner. blocking is the client for the workers' blocking
// waits: one connection per owned shard, so its pool must hold the shard
// count.
func New(store *queue.Store, blocking redis.Cmdable, pub Publisher, opts Options, log *slog.Logger) *Owner {
	return &Owner{
		store: store, blocking: blocking, pub: pub, opts: opts, log: log,
		owned: make(map[int]*worker), releasing: make(map[int]struct{}), stats: make(map[int]queue.ShardStats),
	}
}

// Owned lists the shards this instance owns now.
func (o *Owner) Owned() []int {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]int, 0, len(o.owned))
	for k := range o.owned {
		out = append(out, k)
	}
	return out
}

// Run balances shards until ctx ends, then stops its workers and gives its
// leases and registry entry up so the others take over at once.
func (o *Owner) Run(ctx context.Context) error {
	tick := time.NewTicker(o.opts.Lease / 3)
	defer tick.Stop()
	defer o.leave()
	for {
		o.balance(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// balance renews the owned leases, drops shards beyond this instance's
// share and takes free ones up to it.
func (o *Owner) balance(ctx context.Context) {
	live, err := o.store.Heartbeat(ctx, o.opts.Instance, o.opts.Lease)
	if err != nil {
		if ctx.Err() == nil {
			o.log.WarnContext(ctx, "delivery registry heartbeat failed", "err", err)
		}
		return
	}
	shards := o.store.Shards()
	share := (shards + max(live, 1) - 1) / max(live, 1)

	o.mu.Lock()
	defer o.mu.Unlock()
	for k, w := range o.owned {
		held, err := o.store.Acquire(ctx, k, o.opts.Instance, o.opts.Lease)
		if err != nil {
			// Redis is unreachable: the worker's own calls fail too, and the
			// lease check inside every script fences it if another instance
			// takes the shard meanwhile.
			continue
		}
		if !held || w.stopped() {
			o.stopLocked(ctx, k, false)
		}
	}
	for k := range o.owned {
		if len(o.owned) <= share {
			break
		}
		o.stopLocked(ctx, k, true)
	}
	// A random order spreads instances that start together over
	// different shards; it needs no cryptographic strength.
	for _, k := range rand.Perm(shards) { //nolint:gosec // placement, not security
		if len(o.owned) >= share {
			break
		}
		if _, ok := o.owned[k]; ok {
			continue
		}
		if _, ok := o.releasing[k]; ok {
			continue
		}
		held, err := o.store.Acquire(ctx, k, o.opts.Instance, o.opts.Lease)
		if err != nil {
			return
		}
		if held {
			o.startLocked(ctx, k)
		}
	}
}

func (o *Owner) startLocked(ctx context.Context, k int) {
	wctx, cancel := context.WithCancel(ctx)
	w := &worker{shard: k, owner: o, cancel: cancel, done: make(chan struct{})}
	o.owned[k] = w
	go func() {
		defer close(w.done)
		w.run(wctx)
	}()
	o.log.DebugContext(ctx, "shard taken", "shard", k, "instance", o.opts.Instance)
}

// stopLocked stops the shard's worker and, when release is set, gives the
// lease up once the worker has ended. It does not wait: a worker may sit in
// a blocking wait for up to a second, and the leases of the other shards
// must be renewed meanwhile.
func (o *Owner) stopLocked(ctx context.Context, k int, release bool) {
	w := o.owned[k]
	delete(o.owned, k)
	o.releasing[k] = struct{}{}
	w.cancel()
	o.stopping.Go(func() {
		<-w.done
		if release {
			if err := o.store.Release(context.WithoutCancel(ctx), k, o.opts.Instance); err != nil {
				o.log.WarnContext(ctx, "shard release failed", "shard", k, "err", err)
			}
		}
		o.mu.Lock()
		delete(o.releasing, k)
		o.mu.Unlock()
		o.log.DebugContext(ctx, "shard given up", "shard", k, "instance", o.opts.Instance)
	})
}

func (o *Owner) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), o.opts.Lease)
	defer cancel()
	o.mu.Lock()
	for k := range o.owned {
		o.stopLocked(ctx, k, true)
	}
	o.mu.Unlock()
	o.stopping.Wait()
	if err := o.store.Leave(ctx, o.opts.Instance); err != nil {
		o.log.WarnContext(ctx, "delivery registry leave failed", "err", err)
	}
}

// worker pushes one owned shard: it waits for devices marked ready and
// drains them, and runs the shard's timers.
type worker struct {
	shard  int
	owner  *Owner
	cancel context.CancelFunc
	done   chan struct{}
	// lastStats is when the shard's sizes were last read; only run
	// touches it.
	lastStats time.Time
}

func (w *worker) stopped() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// retryAfter paces a worker after a failed Redis call.
const retryAfter = 200 * time.Millisecond

func (w *worker) run(ctx context.Context) {
	o := w.owner
	defer w.forgetStats()
	wait := min(o.opts.ExpireEvery, time.Second)
	for {
		_, err := w.try(ctx, "takeover", func(ctx context.Context, k int, token string, _ int) (queue.Pushed, error) {
			return o.store.Takeover(ctx, k, token)
		})
		if err == nil {
			break
		}
		if errors.Is(err, queue.ErrNotOwner) || ctx.Err() != nil {
			return
		}
	}
	// A previous owner may have stopped between its BLMOVE and its drain,
	// leaving a device in the wake list that no new ready mark would
	// bring back (it is still in the ready set): drain once before waiting.
	if !w.step(ctx, "drain", o.store.Drain) {
		return
	}
	var lastExpire time.Time
	for ctx.Err() == nil {
		if time.Since(lastExpire) >= o.opts.ExpireEvery {
			lastExpire = time.Now()
			if !w.step(ctx, "expire", o.store.Expire) || !w.owedReceipts(ctx) {
				return
			}
			w.sampleStats(ctx)
		}
		woke, err := o.store.WaitReady(ctx, o.blocking, w.shard, wait)
		if err != nil {
			if ctx.Err() == nil {
				o.log.WarnContext(ctx, "shard wait failed", "shard", w.shard, "err", err)
				pause(ctx, retryAfter)
			}
			continue
		}
		if woke && !w.step(ctx, "drain", o.store.Drain) {
			return
		}
	}
}

// step runs one owner-only queue operation and publishes what it released.
// It returns false when the lease is gone and the worker must stop.
func (w *worker) step(ctx context.Context, name string, op ownerOp) bool {
	_, err := w.try(ctx, name, op)
	return !errors.Is(err, queue.ErrNotOwner)
}

type ownerOp func(context.Context, int, string, int) (queue.Pushed, error)

// try runs op, publishes what it released, and logs and paces failures.
func (w *worker) try(ctx context.Context, name string, op ownerOp) (queue.Pushed, error) {
	o := w.owner
	p, err := op(ctx, w.shard, o.opts.Instance, o.opts.Batch)
	switch {
	case errors.Is(err, queue.ErrNotOwner):
		o.log.InfoContext(ctx, "shard lease lost", "shard", w.shard, "instance", o.opts.Instance)
		return p, err
	case err != nil:
		if ctx.Err() == nil {
			o.log.WarnContext(ctx, "shard "+name+" failed", "shard", w.shard, "err", err)
			pause(ctx, retryAfter)
		}
		return p, err
	}
	o.pub.Publish(ctx, p)
	return p, nil
}

// receiptGrace is how long an owed receipt is left to the ack that owes
// it before the owner queues it.
const receiptGrace = 5 * time.Second

// owedReceipts queues the receipts that acks recorded but did not confirm
// queueing (their process died in between). Queueing is idempotent, so a
// late confirmation racing this does not send a 300 twice.
func (w *worker) owedReceipts(ctx context.Context) bool {
	o := w.owner
	rs, err := o.store.OwedReceipts(ctx, w.shard, o.opts.Instance, receiptGrace, o.opts.Batch)
	switch {
	case errors.Is(err, queue.ErrNotOwner):
		return false
	case err != nil:
		if ctx.Err() == nil {
			o.log.WarnContext(ctx, "shard outbox failed", "shard", w.shard, "err", err)
		}
		return true
	}
	for _, r := range rs {
		if err := o.store.PushReceipt(ctx, r.To, r.MessageID, queue.ReceiptDelivered); err != nil {
			o.log.WarnContext(ctx, "owed receipt not queued", "shard", w.shard, "id", r.MessageID, "err", err)
			return true
		}
		if err := o.store.ReceiptQueued(ctx, w.shard, r); err != nil {
			return true
		}
	}
	return true
}

func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
