package shard_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/bachata-chat/bachata/libs/testkit"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	"github.com/bachata-chat/bachata/services/delivery/internal/queue"
	"github.com/bachata-chat/bachata/services/delivery/internal/shard"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type discard struct{}

func (discard) Publish(context.Context, queue.Pushed) {}

// recorder keeps the ids of the messages published.
type recorder struct {
	mu  sync.Mutex
	ids []string
}

func (r *recorder) Publish(_ context.Context, p queue.Pushed) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range p.Deliveries {
		r.ids = append(r.ids, d.MessageID)
	}
}

func (r *recorder) published() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...)
}

const shards = 8

type running struct {
	owner *shard.Owner
	stop  func()
}

func newStore(t *testing.T, r *testkit.Redis) *queue.Store {
	t.Helper()
	store, err := queue.New(r.Client(), queue.Options{
		Prefix: "test", Shards: shards, DedupeTTL: time.Hour, Window: 8, Visibility: time.Minute, MaxAttempts: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	return store
}

func start(t *testing.T, r *testkit.Redis, name string) *running {
	t.Helper()
	return startWith(t, r, name, discard{})
}

func startWith(t *testing.T, r *testkit.Redis, name string, pub shard.Publisher) *running {
	t.Helper()
	store := newStore(t, r)
	o := shard.New(store, r.Client(), pub, shard.Options{
		Instance: name, Lease: 600 * time.Millisecond, ExpireEvery: 100 * time.Millisecond, Batch: 10,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := o.Run(ctx); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	})
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return &running{owner: o, stop: stop}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestInstancesShareTheShardsAndTakeOverFromOneThatLeaves(t *testing.T) {
	r := testkit.StartRedis(t, testkit.RedisOptions{})
	a := start(t, r, "a")
	eventually(t, "a owns every shard", func() bool { return len(a.owner.Owned()) == shards })

	b := start(t, r, "b")
	eventually(t, "a and b share the shards", func() bool {
		na, nb := len(a.owner.Owned()), len(b.owner.Owned())
		return na == shards/2 && nb == shards/2
	})

	b.stop()
	eventually(t, "a owns every shard again", func() bool { return len(a.owner.Owned()) == shards })
}

// TestNewOwnerDrainsWhatThePreviousOneWokeFor: the previous owner's BLMOVE
// took a device into the wake list and the owner stopped before draining.
// The device's ready mark is still set, so no new message brings it back to
// the ready list; the next owner must drain it on its own.
func TestNewOwnerDrainsWhatThePreviousOneWokeFor(t *testing.T) {
	r := testkit.StartRedis(t, testkit.RedisOptions{})
	ctx := context.Background()
	store := newStore(t, r)
	bob := &commonv1.DeviceRef{User: "@bob@localhost", Device: "phone"}
	alice := &commonv1.DeviceRef{User: "@alice@localhost", Device: "phone"}
	k := store.ShardOf(bob.GetUser())
	if ok, err := store.Acquire(ctx, k, "previous", time.Minute); err != nil || !ok {
		t.Fatalf("acquire: %v, %v", ok, err)
	}
	if _, err := store.Attach(ctx, bob, "gw-1", "c1"); err != nil {
		t.Fatal(err)
	}
	msg := &commonv1.Message{Id: "m1", Type: "text", From: alice.GetUser(), Dest: bob.GetUser()}
	if _, err := store.Enqueue(ctx, msg, alice, queue.Recipient{User: bob.GetUser()}); err != nil {
		t.Fatal(err)
	}
	if woke, err := store.WaitReady(ctx, r.Client(), k, time.Second); err != nil || !woke {
		t.Fatalf("wait: %v, %v", woke, err)
	}
	if err := store.Release(ctx, k, "previous"); err != nil {
		t.Fatal(err)
	}

	rec := &recorder{}
	startWith(t, r, "next", rec)
	eventually(t, "m1 published by the next owner", func() bool { return len(rec.published()) == 1 })
}
