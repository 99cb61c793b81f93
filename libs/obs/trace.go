package obs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	"go.opentelemetry.io/otel/trace/noop"
)

// FlushTimeout bounds Tracing.Shutdown in the services' mains: the spans
// still buffered get this long to reach the collector after everything
// else has stopped. It counts against the chart's grace period.
const FlushTimeout = 3 * time.Second

// ErrTracingConfig means an OTEL_* variable holds a value this build does
// not support.
var ErrTracingConfig = errors.New("tracing configuration")

// tracingOn is set once a service installed a tracer provider. The gRPC
// stats handlers, the Redis hooks and the services' own spans check it, so
// with tracing off none of them is even installed: no per-call cost at all.
var tracingOn atomic.Bool

// TracingEnabled reports whether this process exports traces (SetupTracing
// installed a provider, or a test did with UseTracerProvider).
func TracingEnabled() bool { return tracingOn.Load() }

// Tracer returns the named tracer of the global provider, or nil when
// tracing is off. Code on hot paths keeps the result and skips all of its
// span work on nil.
func Tracer(name string) trace.Tracer {
	if !TracingEnabled() {
		return nil
	}
	return otel.Tracer(name)
}

// Tracing is the process's tracer provider as SetupTracing configured it.
// Shutdown flushes it; a Tracing for tracing off does nothing.
type Tracing struct {
	provider *sdktrace.TracerProvider
}

// Enabled reports whether spans are exported.
func (t *Tracing) Enabled() bool { return t != nil && t.provider != nil }

// Shutdown exports the spans still buffered and stops the provider. Call
// it last, after the service stopped, bounded by ctx (FlushTimeout).
func (t *Tracing) Shutdown(ctx context.Context) error {
	if !t.Enabled() {
		return nil
	}
	if err := t.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing shutdown: %w", err)
	}
	return nil
}

// SetupTracing configures tracing from the standard OpenTelemetry
// variables, read through getenv:
//
//   - OTEL_SDK_DISABLED=true, OTEL_TRACES_EXPORTER=none, or no exporter
//     configured at all (neither OTEL_TRACES_EXPORTER nor an
//     OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT) turn tracing off: nothing is
//     installed, the global provider stays the no-op one, and no
//     instrumentation is added anywhere.
//   - Otherwise spans go to an OTLP exporter, over gRPC or HTTP as
//     OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL says ("grpc", "http/protobuf";
//     default http/protobuf as the specification has it). The exporter
//     reads its endpoint, headers, TLS and timeout from the OTEL_EXPORTER_
//     OTLP_* variables itself; the batch processor reads OTEL_BSP_*; the
//     sampler comes from OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG
//     (default parentbased_always_on).
//
// The resource is service.name=service unless OTEL_SERVICE_NAME says
// otherwise, plus OTEL_RESOURCE_ATTRIBUTES. The propagator is W3C trace
// context and baggage. Export errors are logged at warn on logger.
//
// The SDK reads its variables from the process environment; getenv decides
// only whether tracing is on and which exporter, so a test's getenv can
// turn it off.
func SetupTracing(ctx context.Context, service string, getenv func(string) string, logger *slog.Logger) (*Tracing, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return &Tracing{}, nil
	}
	exporter := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")))
	endpoint := firstSet(getenv, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
	switch {
	case exporter == "none", exporter == "" && endpoint == "":
		return &Tracing{}, nil
	case exporter != "" && exporter != "otlp":
		return nil, fmt.Errorf("%w: OTEL_TRACES_EXPORTER %q: want otlp or none", ErrTracingConfig, exporter)
	}
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch protocol := firstSet(getenv, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"); protocol {
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	default:
		return nil, fmt.Errorf("%w: OTEL_EXPORTER_OTLP_PROTOCOL %q: want grpc or http/protobuf", ErrTracingConfig, protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", service)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(),
		resource.WithHost(),
	)
	if err != nil {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("opentelemetry", "err", err)
	}))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	install(tp)
	return &Tracing{provider: tp}, nil
}

// UseTracerProvider installs tp as the global provider, with the W3C
// propagators, and turns tracing on: for tests that collect spans in
// process. The returned function restores tracing off.
func UseTracerProvider(tp trace.TracerProvider) (restore func()) {
	install(tp)
	return func() {
		tracingOn.Store(false)
		otel.SetTracerProvider(noop.NewTracerProvider())
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator())
	}
}

func install(tp trace.TracerProvider) {
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	tracingOn.Store(true)
}

func firstSet(getenv func(string) string, names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(getenv(n)); v != "" {
			return v
		}
	}
	return ""
}

// traceParentKey is the W3C header the stored trace context uses.
const traceParentKey = "traceparent"

// TraceParent is the W3C traceparent of the span in ctx when that span is
// sampled, else "". It is what a message carries into storage and onto
// NATS (common.v1.Message.trace_parent), so only sampled messages pay for
// it, and a message that was not sampled starts no spans downstream.
func TraceParent(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() || !sc.IsSampled() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c[traceParentKey]
}

// ContextWithTraceParent returns ctx with the span context tp names as its
// remote parent; ctx unchanged when tp is empty or malformed.
func ContextWithTraceParent(ctx context.Context, tp string) context.Context {
	if tp == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{traceParentKey: tp})
}

// ChildOnly wraps tp so that its tracers start spans only inside a trace:
// a span whose context has no valid parent is not started. Instrumented
// clients that also serve background loops (the delivery shard owners'
// blocking waits and timers on Redis) then add spans to the operations of
// a message and create no root trace per poll.
func ChildOnly(tp trace.TracerProvider) trace.TracerProvider {
	return childOnlyProvider{tp: tp}
}

type childOnlyProvider struct {
	embedded.TracerProvider
	tp trace.TracerProvider
}

func (p childOnlyProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return childOnlyTracer{t: p.tp.Tracer(name, opts...)}
}

type childOnlyTracer struct {
	embedded.Tracer
	t trace.Tracer
}

func (t childOnlyTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		// The span in ctx is the no-op one when there is no trace; it
		// records nothing and ending it does nothing.
		return ctx, trace.SpanFromContext(ctx)
	}
	return t.t.Start(ctx, name, opts...)
}
