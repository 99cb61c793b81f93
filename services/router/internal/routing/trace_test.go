package routing

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/bachata-chat/bachata/libs/obs"
	deliveryv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/delivery/v1"
	"github.com/bachata-chat/bachata/services/router/chain"
)

// recordingEnqueuer is an in-process Enqueuer, so the call's context (and
// its span) reaches the service as is.
// With discard set it keeps nothing (benchmarks).
type recordingEnqueuer struct {
	discard bool
	mu      sync.Mutex
	got     []*deliveryv1.EnqueueRequest
}

func (r *recordingEnqueuer) Enqueue(_ context.Context, in *deliveryv1.EnqueueRequest, _ ...grpc.CallOption) (*deliveryv1.EnqueueResponse, error) {
	if r.discard {
		return &deliveryv1.EnqueueResponse{Devices: 1}, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, proto.CloneOf(in))
	return &deliveryv1.EnqueueResponse{Devices: 1}, nil
}

func (r *recordingEnqueuer) Push(context.Context, *deliveryv1.PushRequest, ...grpc.CallOption) (*deliveryv1.PushResponse, error) {
	return &deliveryv1.PushResponse{}, nil
}

// TestMessageCarriesTheRoutersTrace: a sampled Route call stamps the
// message with its trace context before it is queued; whatever a peer put
// in the field is replaced, and nothing is carried when not sampled.
func TestMessageCarriesTheRoutersTrace(t *testing.T) {
	t.Parallel()
	c, err := chain.New(chain.NewDirect("localhost"))
	require.NoError(t, err)
	enq := &recordingEnqueuer{}
	svc, err := New(Options{Chain: c, Delivery: enq, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("t").Start(t.Context(), "Route")
	defer span.End()

	m := directToBob("m-traced")
	m.TraceParent = "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01"
	_, err = svc.Route(ctx, fromAlice(m))
	require.NoError(t, err)
	untraced := directToBob("m-untraced")
	untraced.TraceParent = m.TraceParent
	_, err = svc.Route(t.Context(), fromAlice(untraced))
	require.NoError(t, err)

	require.Len(t, enq.got, 2)
	require.Equal(t, obs.TraceParent(ctx), enq.got[0].GetMessage().GetTraceParent())
	require.Empty(t, enq.got[1].GetMessage().GetTraceParent())
}
