package ws

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/bachata-chat/bachata/libs/obs"
)

// traced gives the harness's endpoint a tracer of the test's own, whose
// ended spans rec collects; the global provider stays untouched.
func traced(t *testing.T) (harnessOpt, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return func(o *Options, _ *string) { o.Tracer = tp.Tracer("test") }, rec
}

func spanNamed(rec *tracetest.SpanRecorder, name string) sdktrace.ReadOnlySpan {
	for _, s := range rec.Ended() {
		if s.Name() == name {
			return s
		}
	}
	return nil
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]string {
	out := map[attribute.Key]string{}
	for _, kv := range s.Attributes() {
		out[kv.Key] = kv.Value.String()
	}
	return out
}

func TestReceiveSpanIsTheRootOfAMessageAndHoldsNoBody(t *testing.T) {
	t.Parallel()
	opt, rec := traced(t)
	h := newHarness(t, opt)
	c := h.dial("alice", "phone")
	c.sendRaw(`{"id":"m1","type":"direct","dest":"bob","data":{"text":"secret words"}}`)
	require.Equal(t, `{"type":100,"data":"m1"}`, c.next().raw)
	eventually(t, func() bool { return spanNamed(rec, "ws.receive direct") != nil }, "ws.receive span")

	s := spanNamed(rec, "ws.receive direct")
	require.False(t, s.Parent().IsValid(), "the root of the message's trace")
	a := attrs(s)
	require.Equal(t, "m1", a["bachata.message.id"])
	require.Equal(t, "direct", a["bachata.message.type"])
	require.Equal(t, "@alice@localhost", a["bachata.user"])
	require.Equal(t, "phone", a["bachata.device"])
	require.Equal(t, "queued", a["bachata.outcome"])
	for k, v := range a {
		require.NotContains(t, v, "secret", "attribute %s carries the body", k)
	}

	c.sendRaw(`{"id":"m2","type":"made.up","dest":"bob","data":{}}`)
	c.next()
	eventually(t, func() bool { return spanNamed(rec, "ws.receive other") != nil }, "a client's own type gets the shared name")
}

func TestWriteSpanContinuesTheMessagesTraceAndTheFrameCarriesNoTrace(t *testing.T) {
	t.Parallel()
	opt, rec := traced(t)
	h := newHarness(t, opt)
	c := h.dial("alice", "phone")
	connID := h.peers.Connects()[0].GetConnectionId()

	// The message's trace (its push span in delivery), and the publish's.
	msgTrace := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	publish := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{3}, SpanID: trace.SpanID{4}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	tp := obs.TraceParent(trace.ContextWithSpanContext(context.Background(), msgTrace))
	batch := batchFor("@alice@localhost", "phone", connID, message("m1"), receipt(300, "m0"))
	batch.Deliveries[0].GetMessage().TraceParent = tp
	batch.Deliveries[1].GetReceipt().TraceParent = tp
	h.srv.DeliverContext(trace.ContextWithRemoteSpanContext(context.Background(), publish), batch)

	f := c.next()
	require.False(t, strings.Contains(f.raw, "trace") || strings.Contains(f.raw, tp[3:35]), "the client's frame must not carry trace context: %s", f.raw)
	require.Equal(t, `{"id":"m1","type":"direct","time":1700000000000,"from":"@bob@localhost","dest":"alice","data":{"text":"hi"}}`, f.raw)
	require.Equal(t, `{"type":300,"data":"m0"}`, c.next().raw)
	eventually(t, func() bool { return len(h.peers.Acks()) == 1 }, "receipt confirmed")

	var writes []sdktrace.ReadOnlySpan
	eventually(t, func() bool {
		writes = writes[:0]
		for _, s := range rec.Ended() {
			if s.Name() == "ws.write" {
				writes = append(writes, s)
			}
		}
		return len(writes) == 2
	}, "a ws.write span per frame, ended once written")
	receive := spanNamed(rec, "nats.receive")
	require.NotNil(t, receive)
	require.Equal(t, publish.SpanID(), receive.Parent().SpanID(), "nats.receive continues the publish's header context")
	for _, w := range writes {
		require.Equal(t, msgTrace.TraceID(), w.SpanContext().TraceID(), "in the message's trace")
		require.Equal(t, msgTrace.SpanID(), w.Parent().SpanID())
		require.Len(t, w.Links(), 1)
		require.Equal(t, receive.SpanContext().SpanID(), w.Links()[0].SpanContext.SpanID())
	}
}

func TestUntracedDeliveriesMakeNoSpans(t *testing.T) {
	t.Parallel()
	opt, rec := traced(t)
	h := newHarness(t, opt)
	c := h.dial("alice", "phone")
	h.srv.Deliver(batchFor("@alice@localhost", "phone", h.peers.Connects()[0].GetConnectionId(), message("m1")))
	require.Equal(t, "m1", c.next().ID)
	c.pingPong()
	require.Empty(t, rec.Ended(), "no header context, no trace parent: nothing to trace")
}
