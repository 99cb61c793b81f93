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
	"github.com/bachata-chat/bachata/services/delivery/internal/queue"
	"github.com/bachata-chat/bachata/services/delivery/internal/shard"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type discard struct{}

func (discard) Publish(context.Context, queue.Pushed) {}

const shards = 8

type running struct {
	owner *shard.Owner
	stop  func()
}

func start(t *testing.T, r *testkit.Redis, name string) *running {
	t.Helper()
	store, err := queue.New(r.Client(), queue.Options{
		Prefix: "test", Shards: shards, DedupeTTL: time.Hour, Window: 8, Visibility: time.Second, MaxAttempts: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	o := shard.New(store, r.Client(), discard{}, shard.Options{
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
