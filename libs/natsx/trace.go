package natsx

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// HeaderCarrier lets the OpenTelemetry propagators read and write NATS
// message headers, so the trace context of the publishing span travels
// with the message.
type HeaderCarrier nats.Header

var _ propagation.TextMapCarrier = HeaderCarrier{}

// Get implements propagation.TextMapCarrier.
func (c HeaderCarrier) Get(key string) string { return nats.Header(c).Get(key) }

// Set implements propagation.TextMapCarrier.
func (c HeaderCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }

// Keys implements propagation.TextMapCarrier.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// InjectTrace writes the trace context of the span in ctx into m's headers
// with the global propagator. Without a valid span (tracing off, or no
// trace) it does nothing and m gets no headers.
func InjectTrace(ctx context.Context, m *nats.Msg) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	otel.GetTextMapPropagator().Inject(ctx, HeaderCarrier(m.Header))
}

// ExtractTrace returns ctx with the trace context m's headers carry, if
// any, as its remote parent.
func ExtractTrace(ctx context.Context, m *nats.Msg) context.Context {
	if len(m.Header) == 0 {
		return ctx
	}
	return otel.GetTextMapPropagator().Extract(ctx, HeaderCarrier(m.Header))
}
