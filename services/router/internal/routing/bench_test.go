package routing

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/bachata-chat/bachata/libs/grpcx"
	"github.com/bachata-chat/bachata/libs/obs"
	routerv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/router/v1"
	"github.com/bachata-chat/bachata/services/router/chain"
)

// discard is a span exporter that drops everything: the benchmarks
// measure making and batching spans, not shipping them.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// tracingModes are the configurations compared: tracing off (nothing
// installed, the default), on with every message sampled, and on with
// none sampled (a ratio sampler's common case).
var tracingModes = []struct {
	name    string
	sampler sdktrace.Sampler // nil: tracing off
}{
	{name: "off"},
	{name: "on-sampled", sampler: sdktrace.AlwaysSample()},
	{name: "on-unsampled", sampler: sdktrace.ParentBased(sdktrace.NeverSample())},
}

// withTracing installs the mode's provider globally for the benchmark, as
// a service's main does, and returns a tracer for the caller's own root
// span (nil when off).
func withTracing(b *testing.B, sampler sdktrace.Sampler) *sdktrace.TracerProvider {
	b.Helper()
	if sampler == nil {
		return nil
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler), sdktrace.WithBatcher(discard{}))
	restore := obs.UseTracerProvider(tp)
	b.Cleanup(func() {
		restore()
		_ = tp.Shutdown(context.Background())
	})
	return tp
}

func benchService(b *testing.B, enq Enqueuer) *Service {
	b.Helper()
	eph, err := chain.NewEphemeral("localhost", "typing")
	require.NoError(b, err)
	c, err := chain.New(chain.NewHandshake(), eph, chain.NewDirect("localhost"))
	require.NoError(b, err)
	svc, err := New(Options{Chain: c, Delivery: enq, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(b, err)
	return svc
}

// BenchmarkRouteTracing is one direct message through Route in process:
// validation, stamping, the chain (three routes, each a span when traced)
// and the enqueue call, with the caller's span standing in for the gRPC
// server span. Run: go test -run '^$' -bench RouteTracing -benchmem
// ./internal/routing
func BenchmarkRouteTracing(b *testing.B) {
	for _, mode := range tracingModes {
		b.Run(mode.name, func(b *testing.B) {
			tp := withTracing(b, mode.sampler)
			svc := benchService(b, &recordingEnqueuer{discard: true})
			req := fromAlice(directToBob("m-1"))
			b.ReportAllocs()
			for b.Loop() {
				ctx := context.Background()
				var end func()
				if tp != nil {
					c, s := tp.Tracer("bench").Start(ctx, "Route")
					ctx, end = c, func() { s.End() }
				}
				if _, err := svc.Route(ctx, req); err != nil {
					b.Fatal(err)
				}
				if end != nil {
					end()
				}
			}
		})
	}
}

// BenchmarkRouteOverGRPCTracing is the same message over a real gRPC
// round trip on loopback (grpcx server and client, which add the
// OpenTelemetry stats handlers only when tracing is on), the router's cost
// per message as a gateway sees it.
func BenchmarkRouteOverGRPCTracing(b *testing.B) {
	for _, mode := range tracingModes {
		b.Run(mode.name, func(b *testing.B) {
			withTracing(b, mode.sampler)
			svc := benchService(b, &recordingEnqueuer{discard: true})
			lis, err := (&net.ListenConfig{}).Listen(b.Context(), "tcp", "127.0.0.1:0")
			require.NoError(b, err)
			srv := grpcx.NewServer(lis, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Second)
			routerv1.RegisterRouterServiceServer(srv.Server, svc)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- srv.Run(ctx) }()
			b.Cleanup(func() {
				cancel()
				if err := <-done; err != nil {
					b.Error(err)
				}
			})
			cc, err := grpcx.Dial(lis.Addr().String())
			require.NoError(b, err)
			b.Cleanup(func() { _ = cc.Close() })
			client := routerv1.NewRouterServiceClient(cc)
			req := fromAlice(directToBob("m-1"))
			_, err = client.Route(b.Context(), req) // connect before timing
			require.NoError(b, err)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.Route(b.Context(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
