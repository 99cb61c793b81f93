package queue_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bachata-chat/bachata/libs/testkit"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	"github.com/bachata-chat/bachata/services/delivery/internal/queue"
)

// countingHook counts the round trips a client makes: one per command, or
// one per pipeline.
type countingHook struct{ trips int }

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.trips++
		return next(ctx, cmd)
	}
}

func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.trips++
		return next(ctx, cmds)
	}
}

// BenchmarkEnqueueRoom fans one message out to a 10,000-member room, a
// tenth of whose members have a device; it reports the Redis round trips
// one message costs.
func BenchmarkEnqueueRoom(b *testing.B) {
	const members = 10_000
	r := testkit.StartRedis(b, testkit.RedisOptions{})
	rdb := r.Client()
	s, err := queue.New(rdb, queue.Options{Prefix: "bench", Shards: 32, DedupeTTL: time.Hour, Window: 64, Visibility: time.Minute, MaxAttempts: 10})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	const room = "!bench@localhost"
	for i := range members {
		u := fmt.Sprintf("@member-%05d@localhost", i)
		if _, err := s.AddMember(ctx, room, u); err != nil {
			b.Fatal(err)
		}
		if i%10 == 0 {
			if _, err := s.Attach(ctx, &commonv1.DeviceRef{User: u, Device: "phone"}, "gw-1", "c"); err != nil {
				b.Fatal(err)
			}
		}
	}
	sender := &commonv1.DeviceRef{User: "@member-00000@localhost", Device: "phone"}
	hook := &countingHook{}
	rdb.AddHook(hook)
	b.ResetTimer()
	for i := range b.N {
		msg := &commonv1.Message{Id: fmt.Sprintf("m%d", i), Type: "group", From: sender.GetUser(), Dest: room, Data: []byte(`{"text":"hello room"}`)}
		res, err := s.EnqueueRoom(ctx, msg, sender, room, true)
		if err != nil {
			b.Fatal(err)
		}
		if res.Members != members {
			b.Fatalf("reached %d members, want %d", res.Members, members)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(hook.trips)/float64(b.N), "round-trips/op")
	b.ReportMetric(float64(members), "members")
}
