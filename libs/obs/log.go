// Package obs holds what every service exposes to operators: structured
// logs, Prometheus metrics, OpenTelemetry tracing and the /healthz,
// /readyz and /metrics endpoints.
package obs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// NewLogger returns a slog logger writing JSON (format "json", the default)
// or text (format "text") at the given level ("debug", "info", "warn",
// "error"; empty means info). A record logged with a context that holds a
// span (the *Context methods) carries its trace_id and span_id, so a log
// line about a message leads to the message's trace.
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	if level != "" {
		if err := lvl.UnmarshalText([]byte(level)); err != nil {
			return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
		}
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(format) {
	case "", "json":
		return slog.New(TraceHandler(slog.NewJSONHandler(w, opts))), nil
	case "text":
		return slog.New(TraceHandler(slog.NewTextHandler(w, opts))), nil
	default:
		return nil, fmt.Errorf("log format %q: want json or text", format)
	}
}

// TraceHandler wraps h so that every record whose context holds a valid
// span context gets the attributes trace_id and span_id (lowercase hex, as
// trace backends show them). Records without one pass through unchanged.
func TraceHandler(h slog.Handler) slog.Handler { return traceHandler{h} }

type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r = r.Clone()
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(attrs)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}
