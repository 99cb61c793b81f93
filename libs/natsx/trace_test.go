package natsx

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

func TestHeaderCarrierRoundTrip(t *testing.T) {
	t.Parallel()
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("t").Start(t.Context(), "publish")
	defer span.End()

	m := nats.NewMsg("s")
	propagation.TraceContext{}.Inject(ctx, HeaderCarrier(m.Header))
	require.NotEmpty(t, m.Header.Get("traceparent"))
	require.Equal(t, []string{"traceparent"}, HeaderCarrier(m.Header).Keys())

	got := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), HeaderCarrier(m.Header)))
	require.Equal(t, span.SpanContext().TraceID(), got.TraceID())
	require.Equal(t, span.SpanContext().SpanID(), got.SpanID())
}

func TestInjectTraceWithoutASpanAddsNoHeaders(t *testing.T) {
	t.Parallel()
	m := &nats.Msg{Subject: "s"}
	InjectTrace(t.Context(), m)
	require.Nil(t, m.Header)
	require.Equal(t, t.Context(), ExtractTrace(t.Context(), m))
}
