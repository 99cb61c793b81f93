package queue_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/bachata-chat/bachata/libs/testkit"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	eventsv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/events/v1"
	"github.com/bachata-chat/bachata/services/delivery/internal/queue"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var (
	alicePhone  = &commonv1.DeviceRef{User: "@alice@localhost", Device: "phone"}
	aliceLaptop = &commonv1.DeviceRef{User: "@alice@localhost", Device: "laptop"}
	bobPhone    = &commonv1.DeviceRef{User: "@bob@localhost", Device: "phone"}
	bobLaptop   = &commonv1.DeviceRef{User: "@bob@localhost", Device: "laptop"}
)

const owner = "owner-1"

// clock is a settable time source, so timers are tested without waiting.
type clock struct{ ms atomic.Int64 }

func (c *clock) now() time.Time             { return time.UnixMilli(c.ms.Load()) }
func (c *clock) advance(d time.Duration)    { c.ms.Add(d.Milliseconds()) }
func newClock() *clock                      { c := &clock{}; c.ms.Store(1_700_000_000_000); return c }
func defaults(o *queue.Options, c *clock)   { o.Prefix, o.Now = "test", c.now }
func withWindow(n int) func(*queue.Options) { return func(o *queue.Options) { o.Window = n } }

// fixture is a Store on a real redis-server whose shards this test owns.
type fixture struct {
	t     *testing.T
	store *queue.Store
	redis *testkit.Redis
	rdb   redis.Cmdable
	clock *clock
	// prefix starts the fixture's keys.
	prefix string
}

// maker builds a fixture on the backend a test runs on.
type maker func(t *testing.T, tweaks ...func(*queue.Options)) *fixture

func newFixture(t *testing.T, tweaks ...func(*queue.Options)) *fixture {
	t.Helper()
	r := testkit.StartRedis(t, testkit.RedisOptions{AppendOnly: true})
	return newFixtureOn(t, r, r.Client(), "test", tweaks...)
}

func newFixtureOn(t *testing.T, r *testkit.Redis, rdb redis.Cmdable, prefix string, tweaks ...func(*queue.Options)) *fixture {
	t.Helper()
	c := newClock()
	o := queue.Options{Shards: 4, DedupeTTL: time.Hour, Window: 8, Visibility: 30 * time.Second, MaxAttempts: 3}
	defaults(&o, c)
	o.Prefix = prefix
	for _, tw := range tweaks {
		tw(&o)
	}
	s, err := queue.New(rdb, o)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, store: s, redis: r, rdb: rdb, clock: c, prefix: prefix}
	for k := range s.Shards() {
		if ok, err := s.Acquire(context.Background(), k, owner, time.Hour); err != nil || !ok {
			t.Fatalf("acquire shard %d: %v, %v", k, ok, err)
		}
	}
	return f
}

// drain runs the owner's push for every shard, as the shard workers do.
func (f *fixture) drain() queue.Pushed {
	f.t.Helper()
	var all queue.Pushed
	for k := range f.store.Shards() {
		p, err := f.store.Drain(context.Background(), k, owner, 100)
		if err != nil {
			f.t.Fatal(err)
		}
		all.Deliveries = append(all.Deliveries, p.Deliveries...)
		all.Dead = append(all.Dead, p.Dead...)
	}
	return all
}

// expire runs the owner's timers for every shard.
func (f *fixture) expire() queue.Pushed {
	f.t.Helper()
	var all queue.Pushed
	for k := range f.store.Shards() {
		p, err := f.store.Expire(context.Background(), k, owner, 100)
		if err != nil {
			f.t.Fatal(err)
		}
		all.Deliveries = append(all.Deliveries, p.Deliveries...)
		all.Dead = append(all.Dead, p.Dead...)
		all.Undelivered = append(all.Undelivered, p.Undelivered...)
	}
	return all
}

func (f *fixture) attach(d *commonv1.DeviceRef, conn string) int {
	f.t.Helper()
	n, err := f.store.Attach(context.Background(), d, "gw-1", conn)
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

func (f *fixture) detach(d *commonv1.DeviceRef, conn string) {
	f.t.Helper()
	if err := f.store.Detach(context.Background(), d, conn); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) enqueue(id string, r queue.Recipient) queue.EnqueueResult {
	f.t.Helper()
	res, err := f.store.Enqueue(context.Background(), message(id), alicePhone, r)
	if err != nil {
		f.t.Fatal(err)
	}
	return res
}

func (f *fixture) ack(d *commonv1.DeviceRef, ids ...string) queue.AckResult {
	f.t.Helper()
	res, err := f.store.Ack(context.Background(), d, ids)
	if err != nil {
		f.t.Fatal(err)
	}
	return res
}

func message(id string) *commonv1.Message {
	return &commonv1.Message{Id: id, Type: "text", From: alicePhone.GetUser(), Dest: bobPhone.GetUser(), Data: []byte(`{"text":"` + id + `"}`)}
}

func toBob() queue.Recipient { return queue.Recipient{User: bobPhone.GetUser(), Receipt: true} }

func ids(ds []queue.Delivery) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		if d.Message != nil {
			out = append(out, d.Device.GetDevice()+":"+d.Message.GetId())
		} else {
			out = append(out, fmt.Sprintf("%s:%d:%s", d.Device.GetDevice(), d.ReceiptType, d.MessageID))
		}
	}
	return out
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

func scenarioOfflineUserGetsMessagesOnFirstAttach(t *testing.T, newFixture maker) {
	f := newFixture(t)
	if res := f.enqueue("m1", toBob()); res.Duplicate || res.Devices != 0 {
		t.Fatalf("enqueue to a user without devices: %+v", res)
	}
	f.enqueue("m2", toBob())
	equal(t, "nothing to push yet", ids(f.drain().Deliveries), nil)
	if n := f.attach(bobPhone, "c1"); n != 2 {
		t.Fatalf("queued = %d, want 2", n)
	}
	got := f.drain().Deliveries
	equal(t, "first attach", ids(got), []string{"phone:m1", "phone:m2"})
	d := got[0]
	if d.GatewayID != "gw-1" || d.ConnectionID != "c1" || d.Attempt != 1 || string(d.Message.GetData()) != `{"text":"m1"}` {
		t.Fatalf("delivery = %+v", d)
	}
	// A device that appears later does not get what was sent before.
	f.attach(bobLaptop, "c2")
	equal(t, "later device", ids(f.drain().Deliveries), nil)
}

func scenarioEveryAttachedDeviceGetsItsCopy(t *testing.T, newFixture maker) {
	f := newFixture(t)
	f.attach(bobPhone, "c1")
	f.attach(bobLaptop, "c2")
	f.drain()
	if res := f.enqueue("m1", toBob()); res.Devices != 2 {
		t.Fatalf("devices = %d, want 2", res.Devices)
	}
	got := ids(f.drain().Deliveries)
	if len(got) != 2 || got[0] == got[1] {
		t.Fatalf("deliveries = %v, want one per device", got)
	}
}

func scenarioReceiptOnlyOnFirstAckAndBodyFreedAfterLast(t *testing.T, newFixture maker) {
	f := newFixture(t)
	f.attach(bobPhone, "c1")
	f.attach(bobLaptop, "c2")
	f.enqueue("m1", toBob())
	f.drain()

	first := f.ack(bobPhone, "m1")
	if first.Acked != 1 || len(first.Receipts) != 1 || first.Receipts[0].MessageID != "m1" ||
		first.Receipts[0].To.GetDevice() != alicePhone.GetDevice() || first.Receipts[0].To.GetUser() != alicePhone.GetUser() {
		t.Fatalf("first ack: %+v", first)
	}
	if second := f.ack(bobLaptop, "m1"); second.Acked != 1 || len(second.Receipts) != 0 {
		t.Fatalf("second ack: %+v", second)
	}
	if again := f.ack(bobLaptop, "m1"); again.Acked != 0 || len(again.Receipts) != 0 {
		t.Fatalf("repeated ack: %+v", again)
	}
	// Refs count up from 1 per shard; none may be left.
	for k := range f.store.Shards() {
		for ref := 1; ref <= 3; ref++ {
			key := fmt.Sprintf("%s:{%d}:m:%d", f.prefix, k, ref)
			if n, err := f.rdb.Exists(context.Background(), key).Result(); err != nil || n != 0 {
				t.Fatalf("message body %s left after every device acked (%v)", key, err)
			}
		}
	}
}

func scenarioCopyNeverAsksForReceiptAndSkipsSendingDevice(t *testing.T, newFixture maker) {
	f := newFixture(t)
	copyToAlice := queue.Recipient{User: alicePhone.GetUser(), ExcludeDevice: "phone", Copy: true}
	f.attach(alicePhone, "a1")
	if res := f.enqueue("m1", copyToAlice); res.Devices != 0 {
		t.Fatalf("copy with no other device: %+v", res)
	}
	f.attach(aliceLaptop, "a2")
	f.drain()
	f.enqueue("m2", copyToAlice)
	equal(t, "copy", ids(f.drain().Deliveries), []string{"laptop:m2"})
	if ack := f.ack(aliceLaptop, "m2"); ack.Acked != 1 || len(ack.Receipts) != 0 {
		t.Fatalf("ack of a copy: %+v", ack)
	}
}

func scenarioResentIDIsQueuedOnce(t *testing.T, newFixture maker) {
	f := newFixture(t)
	f.attach(bobPhone, "c1")
	if res := f.enqueue("m1", toBob()); res.Duplicate {
		t.Fatal("first send taken for a duplicate")
	}
	if res := f.enqueue("m1", toBob()); !res.Duplicate {
		t.Fatal("resend not recognised")
	}
	equal(t, "once", ids(f.drain().Deliveries), []string{"phone:m1"})
	carol := &commonv1.DeviceRef{User: "@carol@localhost", Device: "web"}
	res, err := f.store.Enqueue(context.Background(), message("m1"), carol, toBob())
	if err != nil || res.Duplicate {
		t.Fatalf("same id from another sender: %+v, %v", res, err)
	}
}

func scenarioWindowHoldsBackUntilAcked(t *testing.T, newFixture maker) {
	f := newFixture(t, withWindow(2))
	f.attach(bobPhone, "c1")
	for i := range 5 {
		f.enqueue(fmt.Sprintf("m%d", i), toBob())
	}
	equal(t, "within window", ids(f.drain().Deliveries), []string{"phone:m0", "phone:m1"})
	f.ack(bobPhone, "m0", "m1")
	equal(t, "after ack", ids(f.drain().Deliveries), []string{"phone:m2", "phone:m3"})
}

func scenarioInFlightRedeliveredInOrderOnReconnect(t *testing.T, newFixture maker) {
	f := newFixture(t, withWindow(2))
	f.attach(bobPhone, "c1")
	for i := range 3 {
		f.enqueue(fmt.Sprintf("m%d", i), toBob())
	}
	f.drain()
	f.detach(bobPhone, "c1")
	if n := f.attach(bobPhone, "c2"); n != 3 {
		t.Fatalf("queued = %d, want 3", n)
	}
	got := f.drain().Deliveries
	equal(t, "redelivery", ids(got), []string{"phone:m0", "phone:m1"})
	if got[0].Attempt != 2 || got[0].ConnectionID != "c2" {
		t.Fatalf("redelivery: %+v", got[0])
	}
}

func scenarioStaleDetachLeavesNewConnectionAlone(t *testing.T, newFixture maker) {
	f := newFixture(t)
	f.attach(bobPhone, "c1")
	f.attach(bobPhone, "c2")
	f.detach(bobPhone, "c1")
	f.enqueue("m1", toBob())
	got := f.drain().Deliveries
	if len(got) != 1 || got[0].ConnectionID != "c2" {
		t.Fatalf("after a stale detach: %+v", got)
	}
}

func scenarioDetachedDeviceQueuesWithoutPushing(t *testing.T, newFixture maker) {
	f := newFixture(t)
	f.attach(bobPhone, "c1")
	f.detach(bobPhone, "c1")
	if res := f.enqueue("m1", toBob()); res.Devices != 1 {
		t.Fatalf("enqueue to a known offline device: %+v", res)
	}
	equal(t, "offline", ids(f.drain().Deliveries), nil)
}

func scenarioReceiptQueuedOnceForSenderAndRemovedWhenConfirmed(t *testing.T, newFixture maker) {
	f := newFixture(t)
	ctx := context.Background()
	for range 2 { // a retry queues nothing more
		if err := f.store.PushReceipt(ctx, alicePhone, "m1", queue.ReceiptDelivered); err != nil {
			t.Fatal(err)
		}
	}
	equal(t, "sender offline", ids(f.drain().Deliveries), nil)
	f.attach(alicePhone, "a1")
	equal(t, "receipt on attach", ids(f.drain().Deliveries), []string{"phone:300:m1"})
	if res := f.ack(alicePhone, "m1"); res.Acked != 0 {
		t.Fatalf("a message ack removed a receipt: %+v", res)
	}
	res, err := f.store.AckReceipts(ctx, alicePhone, []string{"m1"})
	if err != nil || res.Acked != 1 {
		t.Fatalf("receipt confirmation: %+v, %v", res, err)
	}
	f.detach(alicePhone, "a1")
	f.attach(alicePhone, "a2")
	equal(t, "confirmed receipt", ids(f.drain().Deliveries), nil)
}

func scenarioOwedReceiptIsQueuedByTheOwnerWhenTheAckerDied(t *testing.T, newFixture maker) {
	f := newFixture(t)
	ctx := context.Background()
	f.attach(bobPhone, "c1")
	f.enqueue("m1", toBob())
	f.drain()
	ack := f.ack(bobPhone, "m1") // and the process dies before PushReceipt
	shard := f.store.ShardOf(bobPhone.GetUser())
	owed, err := f.store.OwedReceipts(ctx, shard, owner, 5*time.Second, 10)
	if err != nil || len(owed) != 0 {
		t.Fatalf("owed within the grace period: %v, %v", owed, err)
	}
	f.clock.advance(6 * time.Second)
	owed, err = f.store.OwedReceipts(ctx, shard, owner, 5*time.Second, 10)
	if err != nil || len(owed) != 1 || owed[0].MessageID != "m1" || owed[0].To.GetDevice() != "phone" {
		t.Fatalf("owed: %v, %v (ack %+v)", owed, err, ack)
	}
	if err := f.store.PushReceipt(ctx, owed[0].To, "m1", queue.ReceiptDelivered); err != nil {
		t.Fatal(err)
	}
	if err := f.store.ReceiptQueued(ctx, shard, owed[0]); err != nil {
		t.Fatal(err)
	}
	if owed, _ = f.store.OwedReceipts(ctx, shard, owner, 0, 10); len(owed) != 0 {
		t.Fatalf("still owed after queueing: %v", owed)
	}
	f.attach(alicePhone, "a1")
	equal(t, "receipt", ids(f.drain().Deliveries), []string{"phone:300:m1"})
}

func scenarioUnackedEntryDeliveredAgainAfterVisibilityThenDeadLettered(t *testing.T, newFixture maker) {
	f := newFixture(t, withWindow(1))
	f.attach(bobPhone, "c1")
	f.enqueue("m1", toBob())
	f.enqueue("m2", toBob())
	equal(t, "first push", ids(f.drain().Deliveries), []string{"phone:m1"})

	equal(t, "before the timeout", ids(f.expire().Deliveries), nil)
	// The timeout doubles with each attempt: 30 s, then 60 s, then 120 s.
	wait := 30 * time.Second
	for attempt := 2; attempt <= 3; attempt++ {
		f.clock.advance(wait - time.Second)
		equal(t, "just before the timeout", ids(f.expire().Deliveries), nil)
		f.clock.advance(2 * time.Second)
		got := f.expire().Deliveries
		equal(t, "redelivery", ids(got), []string{"phone:m1"})
		if got[0].Attempt != attempt {
			t.Fatalf("attempt = %d, want %d", got[0].Attempt, attempt)
		}
		f.clock.advance(-time.Second)
		wait *= 2
	}
	f.clock.advance(wait + time.Second)
	p := f.expire()
	if len(p.Dead) != 1 || p.Dead[0].MessageID != "m1" || p.Dead[0].Attempts != 3 ||
		p.Dead[0].Reason != eventsv1.DeadLetterReason_DEAD_LETTER_REASON_ATTEMPTS || p.Dead[0].Message.GetId() != "m1" {
		t.Fatalf("dead letters: %+v", p.Dead)
	}
	// The window it held is free for the next message.
	equal(t, "next", ids(p.Deliveries), []string{"phone:m2"})
	n, err := f.rdb.LLen(context.Background(), fmt.Sprintf("%s:{%d}:dead", f.prefix, f.store.ShardOf(bobPhone.GetUser()))).Result()
	if err != nil || n != 1 {
		t.Fatalf("dead-letter list length %d, %v", n, err)
	}
}

func scenarioReconnectsCountAsAttempts(t *testing.T, newFixture maker) {
	f := newFixture(t)
	f.attach(bobPhone, "c0")
	f.enqueue("poison", toBob())
	f.drain()
	for i := 1; i <= 2; i++ {
		f.detach(bobPhone, fmt.Sprintf("c%d", i-1))
		f.attach(bobPhone, fmt.Sprintf("c%d", i))
		equal(t, "again", ids(f.drain().Deliveries), []string{"phone:poison"})
	}
	f.detach(bobPhone, "c2")
	f.attach(bobPhone, "c3")
	p := f.drain()
	if len(p.Deliveries) != 0 || len(p.Dead) != 1 || p.Dead[0].Reason != eventsv1.DeadLetterReason_DEAD_LETTER_REASON_ATTEMPTS {
		t.Fatalf("after max attempts: %+v", p)
	}
}

func scenarioQueueLengthLimitDeadLettersTheOldest(t *testing.T, newFixture maker) {
	f := newFixture(t, func(o *queue.Options) { o.MaxQueueLength = 2 })
	f.attach(bobPhone, "c1")
	f.detach(bobPhone, "c1")
	f.enqueue("m1", toBob())
	f.enqueue("m2", toBob())
	res := f.enqueue("m3", toBob())
	if len(res.Dead) != 1 || res.Dead[0].MessageID != "m1" || res.Dead[0].Reason != eventsv1.DeadLetterReason_DEAD_LETTER_REASON_QUEUE_LENGTH {
		t.Fatalf("dead letters: %+v", res.Dead)
	}
	f.attach(bobPhone, "c2")
	equal(t, "kept", ids(f.drain().Deliveries), []string{"phone:m2", "phone:m3"})
}

func scenarioMaxAgeDeadLettersOldEntries(t *testing.T, newFixture maker) {
	f := newFixture(t, func(o *queue.Options) { o.MaxAge = time.Hour })
	f.attach(bobPhone, "c1")
	f.detach(bobPhone, "c1")
	f.enqueue("old", toBob())
	f.clock.advance(30 * time.Minute)
	f.enqueue("new", toBob())
	f.clock.advance(31 * time.Minute)
	p := f.expire()
	if len(p.Dead) != 1 || p.Dead[0].MessageID != "old" || p.Dead[0].Reason != eventsv1.DeadLetterReason_DEAD_LETTER_REASON_AGE {
		t.Fatalf("dead letters: %+v", p.Dead)
	}
	f.attach(bobPhone, "c2")
	equal(t, "kept", ids(f.drain().Deliveries), []string{"phone:new"})
}

func scenarioUndeliveredReportedOnceThenDelivered(t *testing.T, newFixture maker) {
	f := newFixture(t, func(o *queue.Options) { o.UndeliveredAfter = time.Minute })
	f.enqueue("m1", toBob())
	f.enqueue("copy", queue.Recipient{User: alicePhone.GetUser(), ExcludeDevice: "phone", Copy: true})
	if p := f.expire(); len(p.Undelivered) != 0 {
		t.Fatalf("reported before the delay: %+v", p.Undelivered)
	}
	f.clock.advance(61 * time.Second)
	p := f.expire()
	if len(p.Undelivered) != 1 || p.Undelivered[0].Recipient != bobPhone.GetUser() || p.Undelivered[0].Message.GetId() != "m1" ||
		p.Undelivered[0].Sender.GetDevice() != "phone" {
		t.Fatalf("undelivered: %+v", p.Undelivered)
	}
	if p := f.expire(); len(p.Undelivered) != 0 {
		t.Fatal("reported twice")
	}
	f.attach(bobPhone, "c1")
	f.drain()
	ack := f.ack(bobPhone, "m1")
	if len(ack.Delivered) != 1 || ack.Delivered[0].MessageID != "m1" {
		t.Fatalf("delivered after the report: %+v", ack)
	}
}

func scenarioAckedInTimeIsNeverReported(t *testing.T, newFixture maker) {
	f := newFixture(t, func(o *queue.Options) { o.UndeliveredAfter = time.Minute })
	f.attach(bobPhone, "c1")
	f.enqueue("m1", toBob())
	f.drain()
	if ack := f.ack(bobPhone, "m1"); len(ack.Delivered) != 0 {
		t.Fatalf("delivered report without an undelivered one: %+v", ack)
	}
	f.clock.advance(2 * time.Minute)
	if p := f.expire(); len(p.Undelivered) != 0 {
		t.Fatalf("acked message reported: %+v", p.Undelivered)
	}
}

func scenarioOnlyTheLeaseHolderDrains(t *testing.T, newFixture maker) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.store.Drain(ctx, 0, "intruder", 10); !errors.Is(err, queue.ErrNotOwner) {
		t.Fatalf("drain without the lease: %v", err)
	}
	if ok, err := f.store.Acquire(ctx, 0, "intruder", time.Minute); err != nil || ok {
		t.Fatalf("acquire of a held shard: %v, %v", ok, err)
	}
	if err := f.store.Release(ctx, 0, owner); err != nil {
		t.Fatal(err)
	}
	if ok, err := f.store.Acquire(ctx, 0, "intruder", time.Minute); err != nil || !ok {
		t.Fatalf("acquire of a released shard: %v, %v", ok, err)
	}
	if _, err := f.store.Expire(ctx, 0, owner, 10); !errors.Is(err, queue.ErrNotOwner) {
		t.Fatalf("expire after losing the lease: %v", err)
	}
}

func scenarioWaitReadyWakesOnEnqueueAndDrainTakesTheWoken(t *testing.T, newFixture maker) {
	f := newFixture(t, func(o *queue.Options) { o.Shards = 1 })
	ctx := context.Background()
	woke, err := f.store.WaitReady(ctx, f.rdb, 0, 50*time.Millisecond)
	if err != nil || woke {
		t.Fatalf("wait with nothing ready: %v, %v", woke, err)
	}
	f.attach(bobPhone, "c1")
	if woke, err = f.store.WaitReady(ctx, f.rdb, 0, time.Second); err != nil || !woke {
		t.Fatalf("wait after attach: %v, %v", woke, err)
	}
	f.enqueue("m1", toBob())
	equal(t, "drain", ids(f.drain().Deliveries), []string{"phone:m1"})
}

// TestAcceptedMessageSurvivesRedisCrash kills Redis with SIGKILL after an
// enqueue returned: with AOF fsync on every write, the message is there
// after the restart, in-flight messages included.
func TestAcceptedMessageSurvivesRedisCrash(t *testing.T) {
	f := newFixture(t, withWindow(1))
	ctx := context.Background()
	f.attach(bobPhone, "c1")
	f.enqueue("m1", toBob())
	f.enqueue("m2", toBob())
	f.drain()
	f.redis.Kill()
	if _, err := f.store.Enqueue(ctx, message("m3"), alicePhone, toBob()); err == nil {
		t.Fatal("enqueue with Redis down reported success")
	}
	f.redis.Restart()
	f.detach(bobPhone, "c1")
	f.attach(bobPhone, "c2")
	equal(t, "after crash", ids(f.drain().Deliveries), []string{"phone:m1"})
	f.ack(bobPhone, "m1")
	equal(t, "after ack", ids(f.drain().Deliveries), []string{"phone:m2"})
}

func TestNewRejectsBadOptions(t *testing.T) {
	good := queue.Options{Prefix: "p", Shards: 1, DedupeTTL: time.Hour, Window: 1, Visibility: time.Second, MaxAttempts: 1}
	if _, err := queue.New(nil, good); err != nil {
		t.Fatalf("good options refused: %v", err)
	}
	for name, change := range map[string]func(*queue.Options){
		"empty prefix":    func(o *queue.Options) { o.Prefix = "" },
		"brace in prefix": func(o *queue.Options) { o.Prefix = "a{b" },
		"no shards":       func(o *queue.Options) { o.Shards = 0 },
		"no dedupe":       func(o *queue.Options) { o.DedupeTTL = 0 },
		"no window":       func(o *queue.Options) { o.Window = 0 },
		"no visibility":   func(o *queue.Options) { o.Visibility = 0 },
		"no attempts":     func(o *queue.Options) { o.MaxAttempts = 0 },
		"negative age":    func(o *queue.Options) { o.MaxAge = -1 },
	} {
		o := good
		change(&o)
		if _, err := queue.New(nil, o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func scenarioNewOwnerPushesInFlightFirstAfterACrash(t *testing.T, newFixture maker) {
	f := newFixture(t)
	ctx := context.Background()
	shard := f.store.ShardOf(bobPhone.GetUser())
	f.attach(bobPhone, "c1")
	f.enqueue("m1", toBob())
	f.drain() // pushed, and the owner dies before publishing
	if err := f.rdb.Del(ctx, fmt.Sprintf("%s:{%d}:owner", f.prefix, shard)).Err(); err != nil {
		t.Fatal(err) // its lease lapses
	}
	if ok, err := f.store.Acquire(ctx, shard, "owner-2", time.Minute); err != nil || !ok {
		t.Fatalf("acquire: %v, %v", ok, err)
	}
	f.enqueue("m2", toBob())
	p, err := f.store.Takeover(ctx, shard, "owner-2")
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "takeover", ids(p.Deliveries), []string{"phone:m1"})
	if p.Deliveries[0].Attempt != 2 {
		t.Fatalf("attempt = %d, want 2", p.Deliveries[0].Attempt)
	}
	p, err = f.store.Drain(ctx, shard, "owner-2", 10)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "then newer", ids(p.Deliveries), []string{"phone:m2"})
}

func scenarioCleanHandoverPushesNothingAgain(t *testing.T, newFixture maker) {
	f := newFixture(t)
	ctx := context.Background()
	shard := f.store.ShardOf(bobPhone.GetUser())
	f.attach(bobPhone, "c1")
	f.enqueue("m1", toBob())
	f.drain()
	if err := f.store.Release(ctx, shard, owner); err != nil {
		t.Fatal(err)
	}
	if ok, err := f.store.Acquire(ctx, shard, "owner-2", time.Minute); err != nil || !ok {
		t.Fatalf("acquire: %v, %v", ok, err)
	}
	p, err := f.store.Takeover(ctx, shard, "owner-2")
	if err != nil || len(p.Deliveries) != 0 {
		t.Fatalf("takeover after a clean release: %v, %v", ids(p.Deliveries), err)
	}
}

func scenarioWokenDeviceIsDrainedByTheNextOwner(t *testing.T, newFixture maker) {
	f := newFixture(t, func(o *queue.Options) { o.Shards = 1 })
	ctx := context.Background()
	f.attach(bobPhone, "c1")
	f.enqueue("m1", toBob())
	// The owner's BLMOVE took the device, and the owner stopped before
	// draining; a new mark for the device adds nothing to the ready list.
	if woke, err := f.store.WaitReady(ctx, f.rdb, 0, time.Second); err != nil || !woke {
		t.Fatalf("wait: %v, %v", woke, err)
	}
	f.enqueue("m2", toBob())
	equal(t, "the next drain", ids(f.drain().Deliveries), []string{"phone:m1", "phone:m2"})
}

func scenarioAttachedListsOnlineDevicesButTheExcluded(t *testing.T, newFixture maker) {
	f := newFixture(t)
	ctx := context.Background()
	f.attach(bobPhone, "c1")
	f.attach(bobLaptop, "c2")
	f.detach(bobLaptop, "c2")
	f.attach(alicePhone, "a1")
	ds, err := f.store.Attached(ctx, bobPhone.GetUser(), "", message("typing-1"))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "online", ids(ds), []string{"phone:typing-1"})
	if ds[0].ConnectionID != "c1" || ds[0].GatewayID != "gw-1" {
		t.Fatalf("delivery = %+v", ds[0])
	}
	if ds, err = f.store.Attached(ctx, bobPhone.GetUser(), "phone", message("typing-2")); err != nil || len(ds) != 0 {
		t.Fatalf("excluded device: %v, %v", ids(ds), err)
	}
	// Nothing was queued.
	f.detach(bobPhone, "c1")
	f.attach(bobPhone, "c3")
	equal(t, "after reconnect", ids(f.drain().Deliveries), nil)
}

const room = "!general@localhost"

func scenarioRoomFansOutToMembersButTheSendingDevice(t *testing.T, newFixture maker) {
	f := newFixture(t)
	ctx := context.Background()
	carol := "@carol@localhost"
	for _, u := range []string{alicePhone.GetUser(), bobPhone.GetUser(), carol} {
		added, err := f.store.AddMember(ctx, room, u)
		if err != nil || !added {
			t.Fatalf("add %s: %v, %v", u, added, err)
		}
	}
	f.attach(alicePhone, "a1")
	f.attach(aliceLaptop, "a2")
	f.attach(bobPhone, "b1")
	f.attach(bobLaptop, "b2")
	f.drain()

	res, err := f.store.EnqueueRoom(ctx, message("g1"), alicePhone, room, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Members != 3 || res.Devices != 3 {
		t.Fatalf("fan-out: %+v (want 3 members; alice's laptop and bob's two devices)", res)
	}
	got := ids(f.drain().Deliveries)
	sort.Strings(got)
	equal(t, "fan-out", got, []string{"laptop:g1", "laptop:g1", "phone:g1"})

	// The sender's own copy never owes a 300; another member's ack does.
	if ack := f.ack(aliceLaptop, "g1"); len(ack.Receipts) != 0 {
		t.Fatalf("the sender's copy owed a 300: %+v", ack)
	}
	if ack := f.ack(bobPhone, "g1"); len(ack.Receipts) != 1 {
		t.Fatalf("a member's ack: %+v", ack)
	}
	// Carol had no device: the message waits for her first one.
	f.attach(&commonv1.DeviceRef{User: carol, Device: "web"}, "c1")
	equal(t, "carol", ids(f.drain().Deliveries), []string{"web:g1"})

	// A resend reaches nobody again.
	again, err := f.store.EnqueueRoom(ctx, message("g1"), alicePhone, room, true)
	if err != nil || again.Members != 0 || again.Devices != 0 {
		t.Fatalf("resend: %+v, %v", again, err)
	}
}

func scenarioLargeRoomReachesEveryMember(t *testing.T, newFixture maker) {
	f := newFixture(t)
	ctx := context.Background()
	const n = 2*queue.FanoutBatch + 345
	for i := range n {
		u := fmt.Sprintf("@member-%04d@localhost", i)
		if _, err := f.store.AddMember(ctx, room, u); err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 { // some members have a device online
			f.attach(&commonv1.DeviceRef{User: u, Device: "phone"}, "c")
		}
	}
	f.drain()
	res, err := f.store.EnqueueRoom(ctx, message("big"), alicePhone, room, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Members != n || res.Devices != (n+99)/100 {
		t.Fatalf("fan-out to %d members: %+v", n, res)
	}
	if got := len(f.drain().Deliveries); got != (n+99)/100 {
		t.Fatalf("%d devices pushed, want %d", got, (n+99)/100)
	}
}

func scenarioMembership(t *testing.T, newFixture maker) {
	f := newFixture(t)
	ctx := context.Background()
	exists, member, err := f.store.CheckMember(ctx, room, bobPhone.GetUser())
	if err != nil || exists || member {
		t.Fatalf("empty room: %v %v %v", exists, member, err)
	}
	for i := range 250 {
		if _, err := f.store.AddMember(ctx, room, fmt.Sprintf("@u%03d@localhost", i)); err != nil {
			t.Fatal(err)
		}
	}
	if added, _ := f.store.AddMember(ctx, room, "@u000@localhost"); added {
		t.Fatal("a second add reported new")
	}
	exists, member, err = f.store.CheckMember(ctx, room, "@u007@localhost")
	if err != nil || !exists || !member {
		t.Fatalf("member: %v %v %v", exists, member, err)
	}
	if _, member, _ = f.store.CheckMember(ctx, room, bobPhone.GetUser()); member {
		t.Fatal("bob is not a member")
	}
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("listing never ends")
		}
		page, next, err := f.store.ListMembers(ctx, room, cursor, 50)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page {
			seen[m] = true
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != 250 {
		t.Fatalf("listed %d members, want 250", len(seen))
	}
	if _, _, err := f.store.ListMembers(ctx, room, "not-a-cursor", 10); !errors.Is(err, queue.ErrBadCursor) {
		t.Fatalf("bad cursor: %v", err)
	}
	if removed, err := f.store.RemoveMember(ctx, room, "@u007@localhost"); err != nil || !removed {
		t.Fatalf("remove: %v %v", removed, err)
	}
	if removed, _ := f.store.RemoveMember(ctx, room, "@u007@localhost"); removed {
		t.Fatal("a second remove reported removed")
	}
}

// scenarios run on a single redis-server and on a three-master Redis
// Cluster: every script must stay inside one hash slot.
var scenarios = []struct {
	name string
	run  func(*testing.T, maker)
}{
	{"OfflineUserGetsMessagesOnFirstAttach", scenarioOfflineUserGetsMessagesOnFirstAttach},
	{"EveryAttachedDeviceGetsItsCopy", scenarioEveryAttachedDeviceGetsItsCopy},
	{"ReceiptOnlyOnFirstAckAndBodyFreedAfterLast", scenarioReceiptOnlyOnFirstAckAndBodyFreedAfterLast},
	{"CopyNeverAsksForReceiptAndSkipsSendingDevice", scenarioCopyNeverAsksForReceiptAndSkipsSendingDevice},
	{"ResentIDIsQueuedOnce", scenarioResentIDIsQueuedOnce},
	{"WindowHoldsBackUntilAcked", scenarioWindowHoldsBackUntilAcked},
	{"InFlightRedeliveredInOrderOnReconnect", scenarioInFlightRedeliveredInOrderOnReconnect},
	{"StaleDetachLeavesNewConnectionAlone", scenarioStaleDetachLeavesNewConnectionAlone},
	{"DetachedDeviceQueuesWithoutPushing", scenarioDetachedDeviceQueuesWithoutPushing},
	{"ReceiptQueuedOnceForSenderAndRemovedWhenConfirmed", scenarioReceiptQueuedOnceForSenderAndRemovedWhenConfirmed},
	{"OwedReceiptIsQueuedByTheOwnerWhenTheAckerDied", scenarioOwedReceiptIsQueuedByTheOwnerWhenTheAckerDied},
	{"UnackedEntryDeliveredAgainAfterVisibilityThenDeadLettered", scenarioUnackedEntryDeliveredAgainAfterVisibilityThenDeadLettered},
	{"ReconnectsCountAsAttempts", scenarioReconnectsCountAsAttempts},
	{"QueueLengthLimitDeadLettersTheOldest", scenarioQueueLengthLimitDeadLettersTheOldest},
	{"MaxAgeDeadLettersOldEntries", scenarioMaxAgeDeadLettersOldEntries},
	{"UndeliveredReportedOnceThenDelivered", scenarioUndeliveredReportedOnceThenDelivered},
	{"AckedInTimeIsNeverReported", scenarioAckedInTimeIsNeverReported},
	{"OnlyTheLeaseHolderDrains", scenarioOnlyTheLeaseHolderDrains},
	{"RoomFansOutToMembersButTheSendingDevice", scenarioRoomFansOutToMembersButTheSendingDevice},
	{"LargeRoomReachesEveryMember", scenarioLargeRoomReachesEveryMember},
	{"Membership", scenarioMembership},
	{"AttachedListsOnlineDevicesButTheExcluded", scenarioAttachedListsOnlineDevicesButTheExcluded},
	{"WokenDeviceIsDrainedByTheNextOwner", scenarioWokenDeviceIsDrainedByTheNextOwner},
	{"NewOwnerPushesInFlightFirstAfterACrash", scenarioNewOwnerPushesInFlightFirstAfterACrash},
	{"CleanHandoverPushesNothingAgain", scenarioCleanHandoverPushesNothingAgain},
	{"WaitReadyWakesOnEnqueueAndDrainTakesTheWoken", scenarioWaitReadyWakesOnEnqueueAndDrainTakesTheWoken},
	{"TraceContextTravelsWithMessagesAndReceipts", scenarioTraceContextTravelsWithMessagesAndReceipts},
	{"StatsCountTheShard", scenarioStatsCountTheShard},
}

func TestOnRedis(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { sc.run(t, newFixture) })
	}
}

func TestOnRedisCluster(t *testing.T) {
	cluster := testkit.StartRedisCluster(t, testkit.RedisClusterOptions{Masters: 3, AppendOnly: true})
	rdb := cluster.Client()
	for i, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			sc.run(t, func(t *testing.T, tweaks ...func(*queue.Options)) *fixture {
				t.Helper()
				return newFixtureOn(t, nil, rdb, fmt.Sprintf("c%d", i), tweaks...)
			})
		})
	}
}
