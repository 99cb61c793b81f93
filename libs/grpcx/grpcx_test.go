package grpcx

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/bachata-chat/bachata/libs/obs"
)

// testService answers EmptyCall, failing when told to.
type testService struct {
	testgrpc.UnimplementedTestServiceServer
	fail bool
}

func (s *testService) EmptyCall(context.Context, *testgrpc.Empty) (*testgrpc.Empty, error) {
	if s.fail {
		return nil, status.Error(codes.FailedPrecondition, "told to fail")
	}
	return &testgrpc.Empty{}, nil
}

// serve runs a grpcx server with svc until the test ends and returns a
// client of it.
func serve(t *testing.T, svc *testService) (*Server, testgrpc.TestServiceClient) {
	t.Helper()
	lis, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := NewServer(lis, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Second)
	testgrpc.RegisterTestServiceServer(s.Server, svc)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	cc, err := Dial(lis.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return s, testgrpc.NewTestServiceClient(cc)
}

const emptyCall = "/grpc.testing.TestService/EmptyCall"

func TestServerCountsCallsByMethodAndCode(t *testing.T) {
	t.Parallel()
	svc := &testService{}
	s, client := serve(t, svc)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(s))

	_, err := client.EmptyCall(t.Context(), &testgrpc.Empty{})
	require.NoError(t, err)
	svc2 := &testService{fail: true}
	s2, client2 := serve(t, svc2)
	_, err = client2.EmptyCall(t.Context(), &testgrpc.Empty{})
	require.Equal(t, codes.FailedPrecondition, status.Code(err))

	require.InDelta(t, 1, testutil.ToFloat64(s.metrics.handled.WithLabelValues(emptyCall, "OK")), 0)
	require.InDelta(t, 1, testutil.ToFloat64(s2.metrics.handled.WithLabelValues(emptyCall, "FailedPrecondition")), 0)
	n, err := testutil.GatherAndCount(reg, "bachata_grpc_server_handling_seconds")
	require.NoError(t, err)
	require.Equal(t, 1, n)
}

// Not parallel: it turns tracing on for the process, as a service's main
// does, and off again before the parallel tests run.
func TestTracingOnPropagatesTheCallersTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	restore := obs.UseTracerProvider(tp)
	defer restore()
	_, client := serve(t, &testService{})

	ctx, root := tp.Tracer("t").Start(t.Context(), "root")
	_, err := client.EmptyCall(ctx, &testgrpc.Empty{})
	require.NoError(t, err)
	root.End()

	require.Eventually(t, func() bool { return len(rec.Ended()) >= 3 }, 5*time.Second, 10*time.Millisecond)
	byName := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		byName[s.Name()] = append(byName[s.Name()], s)
		require.Equal(t, root.SpanContext().TraceID(), s.SpanContext().TraceID(), "one trace: %s", s.Name())
	}
	calls := byName["grpc.testing.TestService/EmptyCall"]
	require.Len(t, calls, 2, "a client and a server span")
}
