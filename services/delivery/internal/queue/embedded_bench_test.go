package queue_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bachata-chat/bachata/libs/embedredis/embedredistest"
	"github.com/bachata-chat/bachata/libs/testkit"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	"github.com/bachata-chat/bachata/services/delivery/internal/queue"
)

// BenchmarkEnqueueAck queues a message for an attached device and acks it,
// from many senders at once, on a redis-server that fsyncs every write
// (appendfsync always) and on the embedded store (which fsyncs before every
// reply): the store's cost of one durable message through its queue.
func BenchmarkEnqueueAck(b *testing.B) {
	for _, backend := range []struct {
		name   string
		client func(testing.TB) redis.Cmdable
	}{
		{"redis-server-aof-always", func(tb testing.TB) redis.Cmdable {
			return testkit.StartRedis(tb, testkit.RedisOptions{AppendOnly: true}).Client()
		}},
		{"embedded", func(tb testing.TB) redis.Cmdable { return embedredistest.Start(tb).Client() }},
	} {
		b.Run(backend.name, func(b *testing.B) {
			s, err := queue.New(backend.client(b), queue.Options{Prefix: "bench", Shards: 32, DedupeTTL: time.Hour, Window: 64, Visibility: time.Minute, MaxAttempts: 10})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			sender := &commonv1.DeviceRef{User: "@sender@localhost", Device: "phone"}
			var senders atomic.Int64
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				n := senders.Add(1)
				dev := &commonv1.DeviceRef{User: fmt.Sprintf("@user-%d@localhost", n), Device: "phone"}
				if _, err := s.Attach(ctx, dev, "gw-1", "c"); err != nil {
					b.Error(err)
					return
				}
				for i := 0; pb.Next(); i++ {
					msg := &commonv1.Message{Id: fmt.Sprintf("m%d", i), Type: "direct", From: sender.GetUser(), Dest: dev.GetUser(), Data: []byte(`{"text":"hello"}`)}
					if _, err := s.Enqueue(ctx, msg, sender, queue.Recipient{User: dev.GetUser(), Receipt: true}); err != nil {
						b.Error(err)
						return
					}
					if _, err := s.Ack(ctx, dev, []string{msg.GetId()}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
