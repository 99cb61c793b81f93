package obs

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

func envOf(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestSetupTracingOff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
	}{
		{name: "nothing configured", env: nil},
		{name: "sdk disabled", env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}},
		{name: "exporter none", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}},
		{name: "sampler alone", env: map[string]string{"OTEL_TRACES_SAMPLER": "always_on"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr, err := SetupTracing(t.Context(), "test", envOf(tt.env), discardLogger(t))
			require.NoError(t, err)
			require.False(t, tr.Enabled())
			require.NoError(t, tr.Shutdown(t.Context()))
		})
	}
}

func TestSetupTracingRejectsUnsupportedValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
	}{
		{name: "exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}},
		{name: "protocol", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := SetupTracing(t.Context(), "test", envOf(tt.env), discardLogger(t))
			require.ErrorIs(t, err, ErrTracingConfig)
		})
	}
}

func TestTraceParentRoundTrip(t *testing.T) {
	t.Parallel()
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("t").Start(t.Context(), "root")
	defer span.End()

	s := TraceParent(ctx)
	require.Regexp(t, `^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`, s)
	back := trace.SpanContextFromContext(ContextWithTraceParent(context.Background(), s))
	require.True(t, back.IsRemote())
	require.Equal(t, span.SpanContext().TraceID(), back.TraceID())
	require.Equal(t, span.SpanContext().SpanID(), back.SpanID())

	require.Empty(t, TraceParent(context.Background()), "no span")
	unsampled := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	uctx, us := unsampled.Tracer("t").Start(t.Context(), "root")
	defer us.End()
	require.Empty(t, TraceParent(uctx), "an unsampled trace is not carried")
	require.Equal(t, context.Background(), ContextWithTraceParent(context.Background(), ""))
}

func TestChildOnlyStartsSpansOnlyInsideATrace(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	child := ChildOnly(tp).Tracer("redis")

	_, orphan := child.Start(t.Context(), "BLMOVE")
	orphan.End()
	require.False(t, orphan.SpanContext().IsValid())

	ctx, parent := tp.Tracer("t").Start(t.Context(), "enqueue")
	_, cmd := child.Start(ctx, "EVALSHA")
	cmd.End()
	parent.End()

	ended := rec.Ended()
	require.Len(t, ended, 2)
	require.Equal(t, "EVALSHA", ended[0].Name())
	require.Equal(t, parent.SpanContext().SpanID(), ended[0].Parent().SpanID())
}

func TestLoggerAddsTraceIDs(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger, err := NewLogger(&buf, "info", "json")
	require.NoError(t, err)
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("t").Start(t.Context(), "root")
	defer span.End()

	logger.With("svc", "x").InfoContext(ctx, "about a message", "id", "m1")
	logger.InfoContext(context.Background(), "about nothing")

	dec := json.NewDecoder(&buf)
	var withSpan, without map[string]any
	require.NoError(t, dec.Decode(&withSpan))
	require.NoError(t, dec.Decode(&without))
	require.Equal(t, span.SpanContext().TraceID().String(), withSpan["trace_id"])
	require.Equal(t, span.SpanContext().SpanID().String(), withSpan["span_id"])
	require.Equal(t, "x", withSpan["svc"])
	require.NotContains(t, without, "trace_id")
}

func TestTracerIsNilWhenOff(t *testing.T) {
	t.Parallel()
	if TracingEnabled() {
		t.Skip("another test turned tracing on")
	}
	require.Nil(t, Tracer("x"))
}

func discardLogger(t *testing.T) *slog.Logger {
	t.Helper()
	l, err := NewLogger(&bytes.Buffer{}, "error", "json")
	require.NoError(t, err)
	return l
}

// Not parallel: it installs the global provider, and restores tracing off
// before the parallel tests run.
func TestSetupTracingOnInstallsAProviderAndFlushes(t *testing.T) {
	defer UseTracerProvider(noop.NewTracerProvider())()
	tr, err := SetupTracing(t.Context(), "test", envOf(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
	}), discardLogger(t))
	require.NoError(t, err)
	require.True(t, tr.Enabled())
	require.True(t, TracingEnabled())
	require.NotNil(t, Tracer("x"))
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_ = tr.Shutdown(ctx) // nothing listens: the flush may fail, but it is bounded
}
