package queue_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bachata-chat/bachata/libs/embedredis/embedredistest"
	"github.com/bachata-chat/bachata/services/delivery/internal/queue"
)

// TestOnEmbeddedStore runs every scenario on the embedded store `make run`
// uses when REDIS_URL is unset (package embedredis): the same interface,
// the same behaviour.
func TestOnEmbeddedStore(t *testing.T) {
	rdb := embedredistest.Start(t).Client()
	for i, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			sc.run(t, func(t *testing.T, tweaks ...func(*queue.Options)) *fixture {
				t.Helper()
				return newFixtureOn(t, nil, rdb, fmt.Sprintf("e%d", i), tweaks...)
			})
		})
	}
}

// TestAcceptedMessageSurvivesEmbeddedStoreCrash is
// TestAcceptedMessageSurvivesRedisCrash on the embedded store: what an
// enqueue returned for is in its journal when it is killed.
func TestAcceptedMessageSurvivesEmbeddedStoreCrash(t *testing.T) {
	e := embedredistest.Start(t)
	f := newFixtureOn(t, nil, e.Client(), "test", withWindow(1))
	ctx := context.Background()
	f.attach(bobPhone, "c1")
	f.enqueue("m1", toBob())
	f.enqueue("m2", toBob())
	f.drain()
	e.Kill()
	if _, err := f.store.Enqueue(ctx, message("m3"), alicePhone, toBob()); err == nil {
		t.Fatal("enqueue with the store down reported success")
	}
	e.Restart()
	// The lease was renewed with a TTL before the crash and is still held.
	if ok, err := f.store.Acquire(ctx, 0, owner, time.Hour); err != nil || !ok {
		t.Fatalf("lease after restart: %v, %v", ok, err)
	}
	f.detach(bobPhone, "c1")
	f.attach(bobPhone, "c2")
	equal(t, "after crash", ids(f.drain().Deliveries), []string{"phone:m1"})
	f.ack(bobPhone, "m1")
	equal(t, "after ack", ids(f.drain().Deliveries), []string{"phone:m2"})
}
