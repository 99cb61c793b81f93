package routing

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/bachata-chat/bachata/libs/grpcx"
	deliveryv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/delivery/v1"
	routerv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/router/v1"
	"github.com/bachata-chat/bachata/services/router/chain"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeDelivery is an in-test DeliveryService that records every Enqueue and
// answers what the test set.
type fakeDelivery struct {
	deliveryv1.UnimplementedDeliveryServiceServer

	mu       sync.Mutex
	requests []*deliveryv1.EnqueueRequest
	pushes   []*deliveryv1.PushRequest
	answer   answerFunc
}

func (f *fakeDelivery) Push(_ context.Context, req *deliveryv1.PushRequest) (*deliveryv1.PushResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pushes = append(f.pushes, proto.CloneOf(req))
	return &deliveryv1.PushResponse{Devices: 1}, nil
}

func (f *fakeDelivery) pushed() []*deliveryv1.PushRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*deliveryv1.PushRequest(nil), f.pushes...)
}

// answerFunc is how fakeDelivery answers one Enqueue.
type answerFunc func(context.Context, *deliveryv1.EnqueueRequest) (*deliveryv1.EnqueueResponse, error)

func (f *fakeDelivery) setAnswer(a answerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer = a
}

func (f *fakeDelivery) Enqueue(ctx context.Context, req *deliveryv1.EnqueueRequest) (*deliveryv1.EnqueueResponse, error) {
	f.mu.Lock()
	f.requests = append(f.requests, proto.CloneOf(req))
	answer := f.answer
	f.mu.Unlock()
	if answer == nil {
		return &deliveryv1.EnqueueResponse{Devices: int32(len(req.GetRecipients()))}, nil //nolint:gosec // tiny test values
	}
	return answer(ctx, req)
}

func (f *fakeDelivery) enqueued() []*deliveryv1.EnqueueRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*deliveryv1.EnqueueRequest(nil), f.requests...)
}

// env is a router Service served over real gRPC on loopback, talking to a
// fakeDelivery served the same way.
type env struct {
	router   routerv1.RouterServiceClient
	delivery *fakeDelivery
	now      time.Time
}

type envOptions struct {
	requireSign    bool
	enqueueTimeout time.Duration
	// deliveryDown points the router at a port where nothing listens.
	deliveryDown bool
	// routes replaces the built-in chain.
	routes []chain.Route
	// registry, when set, receives the service's metrics.
	registry *prometheus.Registry
}

var testNow = time.UnixMilli(1_700_000_000_123)

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	e := &env{delivery: &fakeDelivery{}, now: testNow}

	deliveryAddr := closedAddr(t)
	if !o.deliveryDown {
		deliveryAddr = serve(t, logger, func(s *grpc.Server) { deliveryv1.RegisterDeliveryServiceServer(s, e.delivery) })
	}
	dcc, err := grpcx.Dial(deliveryAddr)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, dcc.Close()) })

	routes := o.routes
	if routes == nil {
		routes = []chain.Route{chain.NewHandshake(), chain.NewDirect("localhost")}
	}
	c, err := chain.New(routes...)
	require.NoError(t, err)
	svc, err := New(Options{
		Chain:          c,
		Delivery:       deliveryv1.NewDeliveryServiceClient(dcc),
		RequireSign:    o.requireSign,
		EnqueueTimeout: o.enqueueTimeout,
		Logger:         logger,
		Now:            func() time.Time { return e.now },
		Registerer:     registerer(o.registry),
	})
	require.NoError(t, err)
	routerAddr := serve(t, logger, func(s *grpc.Server) { routerv1.RegisterRouterServiceServer(s, svc) })

	// A plain client without grpcx's retry policy, so each call is one
	// attempt and Unavailable reaches the test as the gateway would see it.
	rcc, err := grpc.NewClient(routerAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, rcc.Close()) })
	e.router = routerv1.NewRouterServiceClient(rcc)
	return e
}

// registerer avoids a typed nil: a nil *Registry is not a nil Registerer.
func registerer(r *prometheus.Registry) prometheus.Registerer {
	if r == nil {
		return nil
	}
	return r
}

// serve runs a grpcx server on a free loopback port until the test ends.
func serve(t *testing.T, logger *slog.Logger, register func(*grpc.Server)) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpcx.NewServer(lis, logger, 5*time.Second)
	register(srv.Server)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return lis.Addr().String()
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	return addr
}
