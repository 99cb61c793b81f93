package queue_test

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/bachata-chat/bachata/libs/obs"
	"github.com/bachata-chat/bachata/services/delivery/internal/queue"
)

// sampledContext returns a context holding a sampled span of a provider of
// the test's own (the global one stays untouched), and its traceparent.
func sampledContext(t *testing.T) (context.Context, string) {
	t.Helper()
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("test").Start(context.Background(), "ack")
	t.Cleanup(func() { span.End() })
	return ctx, obs.TraceParent(ctx)
}

func scenarioTraceContextTravelsWithMessagesAndReceipts(t *testing.T, newFixture maker) {
	f := newFixture(t)
	ctx := context.Background()
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	f.attach(bobPhone, "c1")
	f.attach(alicePhone, "a1")
	m := message("m1")
	m.TraceParent = tp
	if _, err := f.store.Enqueue(ctx, m, alicePhone, toBob()); err != nil {
		t.Fatal(err)
	}
	f.enqueue("m2", toBob()) // not sampled: no trace context
	got := f.drain().Deliveries
	equal(t, "pushed", ids(got), []string{"phone:m1", "phone:m2"})
	if got[0].TraceParent() != tp || got[1].TraceParent() != "" {
		t.Fatalf("trace context of the pushes: %q, %q", got[0].TraceParent(), got[1].TraceParent())
	}

	f.clock.advance(1500 * time.Millisecond)
	ack := f.ack(bobPhone, "m1", "m2")
	if len(ack.Messages) != 2 {
		t.Fatalf("acked messages: %+v", ack.Messages)
	}
	byID := map[string]queue.AckedMessage{}
	for _, a := range ack.Messages {
		byID[a.ID] = a
	}
	if a := byID["m1"]; a.TraceParent != tp || a.Latency != 1500*time.Millisecond {
		t.Fatalf("ack of m1: %+v, want its trace context and 1.5s since the push", a)
	}
	if a := byID["m2"]; a.TraceParent != "" || a.Latency != 1500*time.Millisecond {
		t.Fatalf("ack of m2: %+v", a)
	}

	// The 300 carries the trace context of the span that queued it.
	rctx, rtp := sampledContext(t)
	if err := f.store.PushReceipt(rctx, alicePhone, "m1", queue.ReceiptDelivered); err != nil {
		t.Fatal(err)
	}
	if err := f.store.PushReceipt(ctx, alicePhone, "m2", queue.ReceiptDelivered); err != nil {
		t.Fatal(err)
	}
	rs := f.drain().Deliveries
	equal(t, "receipts", ids(rs), []string{"phone:300:m1", "phone:300:m2"})
	if rs[0].TraceParent() != rtp || rs[0].Event().GetReceipt().GetTraceParent() != rtp || rs[1].TraceParent() != "" {
		t.Fatalf("trace context of the receipts: %q, %q (want %q, \"\")", rs[0].TraceParent(), rs[1].TraceParent(), rtp)
	}

	// A message acked after a reconnect put it back in its queue has no
	// push to measure from.
	f.enqueue("m3", toBob())
	f.drain()
	f.detach(bobPhone, "c1")
	if a := f.ack(bobPhone, "m3").Messages; len(a) != 1 || a[0].Latency != -1 {
		t.Fatalf("ack from the queue: %+v", a)
	}
}

func scenarioStatsCountTheShard(t *testing.T, newFixture maker) {
	f := newFixture(t, func(o *queue.Options) { o.Shards = 1; o.MaxAge = time.Hour; o.MaxQueueLength = 2 })
	ctx := context.Background()
	f.attach(bobPhone, "c1")
	f.enqueue("m1", toBob())
	f.drain()
	f.detach(bobLaptop, "none") // a stale detach changes nothing
	f.enqueue("m2", toBob())
	f.enqueue("m3", toBob())
	f.enqueue("m4", toBob()) // pushes m2 out: one dead letter
	st, err := f.store.Stats(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := queue.ShardStats{InFlight: 1, Queued: 2, ReadyDevices: 1, Outbox: 0, DeadLetters: 1}
	if st != want {
		t.Fatalf("stats = %+v, want %+v", st, want)
	}
	f.ack(bobPhone, "m1")
	if st, err = f.store.Stats(ctx, 0); err != nil || st.InFlight != 0 || st.Outbox != 1 {
		t.Fatalf("after the ack: %+v, %v (the 300 is owed until queued)", st, err)
	}

	g := newFixture(t, func(o *queue.Options) { o.Shards = 1 })
	if st, err := g.store.Stats(ctx, 0); err != nil || st.Queued != -1 {
		t.Fatalf("without a maximum age: %+v, %v", st, err)
	}
}
