// Package peertest runs in-process doubles of the router, delivery and
// presence services at their gRPC boundary, for the gateway's own tests:
// a real grpc.Server on loopback whose handlers record every call and
// answer what the test scripts. The end-to-end tests run the real
// services; these doubles let the gateway's tests script failures and
// outcomes the real ones produce only rarely.
package peertest

import (
	"context"
	"net"
	"sync"
	"testing"

	deliveryv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/delivery/v1"
	presencev1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/presence/v1"
	routerv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/router/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Peers serves RouterService, DeliveryService and PresenceService on one
// loopback address. Every method records its request; Set* script the
// answers. Safe for concurrent use.
type Peers struct {
	routerv1.UnimplementedRouterServiceServer
	deliveryv1.UnimplementedDeliveryServiceServer
	presencev1.UnimplementedPresenceServiceServer

	addr string

	mu          sync.Mutex
	routes      []*routerv1.RouteRequest
	connects    []*presencev1.ConnectRequest
	connectRes  *presencev1.ConnectResponse
	releases    []*presencev1.ReleaseRequest
	disconnects []*presencev1.DisconnectRequest
	heartbeats  []*presencev1.HeartbeatRequest
	attaches    []*deliveryv1.AttachRequest
	detaches    []*deliveryv1.DetachRequest
	acks        []*deliveryv1.AckRequest

	route      func(context.Context, *routerv1.RouteRequest) (*routerv1.RouteResponse, error)
	attachErr  error
	connectErr error
	known      bool
	onAttach   func(*deliveryv1.AttachRequest)
}

// Start serves the doubles on a free 127.0.0.1 port until the test ends.
// By default Route answers OUTCOME_QUEUED, Heartbeat known=true, and
// every other call succeeds.
func Start(t testing.TB) *Peers {
	t.Helper()
	var lc net.ListenConfig
	lis, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("peertest: listen: %v", err)
	}
	p := &Peers{addr: lis.Addr().String(), known: true}
	p.route = func(context.Context, *routerv1.RouteRequest) (*routerv1.RouteResponse, error) {
		return &routerv1.RouteResponse{Outcome: routerv1.Outcome_OUTCOME_QUEUED}, nil
	}
	srv := grpc.NewServer()
	routerv1.RegisterRouterServiceServer(srv, p)
	deliveryv1.RegisterDeliveryServiceServer(srv, p)
	presencev1.RegisterPresenceServiceServer(srv, p)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis) // returns when stopped
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return p
}

// Addr is host:port of the three services.
func (p *Peers) Addr() string { return p.addr }

// SetRoute scripts Route.
func (p *Peers) SetRoute(f func(context.Context, *routerv1.RouteRequest) (*routerv1.RouteResponse, error)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.route = f
}

// SetAttachErr makes Attach fail with err (nil to succeed).
func (p *Peers) SetAttachErr(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.attachErr = err
}

// SetConnectResponse makes every successful Connect answer res; nil
// answers an empty response, as a presence that issues no session keys.
func (p *Peers) SetConnectResponse(res *presencev1.ConnectResponse) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.connectRes = res
}

// SetConnectErr makes Connect fail with err (nil to succeed).
func (p *Peers) SetConnectErr(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.connectErr = err
}

// SetOnAttach runs f inside every successful Attach, before it returns;
// delivery publishes a device's queue at that moment.
func (p *Peers) SetOnAttach(f func(*deliveryv1.AttachRequest)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onAttach = f
}

// SetKnown scripts Heartbeat's known.
func (p *Peers) SetKnown(known bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.known = known
}

// Forget drops the calls recorded so far, so a benchmark measuring memory
// does not count them.
func (p *Peers) Forget() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.routes, p.connects, p.disconnects, p.heartbeats = nil, nil, nil, nil
	p.attaches, p.detaches, p.acks = nil, nil, nil
}

func clone[M proto.Message](in []M) []M {
	out := make([]M, len(in))
	for i, m := range in {
		out[i] = proto.Clone(m).(M)
	}
	return out
}

// Routes returns the Route requests so far.
func (p *Peers) Routes() []*routerv1.RouteRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return clone(p.routes)
}

// Connects returns the presence Connect requests so far.
func (p *Peers) Connects() []*presencev1.ConnectRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return clone(p.connects)
}

// Disconnects returns the presence Disconnect requests so far.
func (p *Peers) Disconnects() []*presencev1.DisconnectRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return clone(p.disconnects)
}

// Heartbeats returns the Heartbeat requests so far.
func (p *Peers) Heartbeats() []*presencev1.HeartbeatRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return clone(p.heartbeats)
}

// Attaches returns the delivery Attach requests so far.
func (p *Peers) Attaches() []*deliveryv1.AttachRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return clone(p.attaches)
}

// Detaches returns the delivery Detach requests so far.
func (p *Peers) Detaches() []*deliveryv1.DetachRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return clone(p.detaches)
}

// Acks returns the delivery Ack requests so far.
func (p *Peers) Acks() []*deliveryv1.AckRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return clone(p.acks)
}

// Route implements routerv1.RouterServiceServer.
func (p *Peers) Route(ctx context.Context, req *routerv1.RouteRequest) (*routerv1.RouteResponse, error) {
	p.mu.Lock()
	p.routes = append(p.routes, req)
	f := p.route
	p.mu.Unlock()
	return f(ctx, req)
}

// Attach implements deliveryv1.DeliveryServiceServer.
func (p *Peers) Attach(_ context.Context, req *deliveryv1.AttachRequest) (*deliveryv1.AttachResponse, error) {
	p.mu.Lock()
	p.attaches = append(p.attaches, req)
	err, hook := p.attachErr, p.onAttach
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if hook != nil {
		hook(req)
	}
	return &deliveryv1.AttachResponse{}, nil
}

// Detach implements deliveryv1.DeliveryServiceServer.
func (p *Peers) Detach(_ context.Context, req *deliveryv1.DetachRequest) (*deliveryv1.DetachResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.detaches = append(p.detaches, req)
	return &deliveryv1.DetachResponse{}, nil
}

// Ack implements deliveryv1.DeliveryServiceServer.
func (p *Peers) Ack(_ context.Context, req *deliveryv1.AckRequest) (*deliveryv1.AckResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.acks = append(p.acks, req)
	return &deliveryv1.AckResponse{Acked: int32(len(req.GetMessageIds()) + len(req.GetReceiptIds()))}, nil //nolint:gosec // a test sends a handful of ids
}

// Enqueue implements deliveryv1.DeliveryServiceServer; the gateway never
// calls it.
func (p *Peers) Enqueue(context.Context, *deliveryv1.EnqueueRequest) (*deliveryv1.EnqueueResponse, error) {
	return nil, status.Error(codes.Unimplemented, "the gateway does not enqueue")
}

// Release implements presencev1.PresenceServiceServer.
func (p *Peers) Release(_ context.Context, req *presencev1.ReleaseRequest) (*presencev1.ReleaseResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.releases = append(p.releases, req)
	return &presencev1.ReleaseResponse{}, nil
}

// Releases returns the presence Release requests so far.
func (p *Peers) Releases() []*presencev1.ReleaseRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return clone(p.releases)
}

// Connect implements presencev1.PresenceServiceServer.
func (p *Peers) Connect(_ context.Context, req *presencev1.ConnectRequest) (*presencev1.ConnectResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.connects = append(p.connects, req)
	if p.connectErr != nil {
		return nil, p.connectErr
	}
	if p.connectRes != nil {
		return p.connectRes, nil
	}
	return &presencev1.ConnectResponse{}, nil
}

// Disconnect implements presencev1.PresenceServiceServer.
func (p *Peers) Disconnect(_ context.Context, req *presencev1.DisconnectRequest) (*presencev1.DisconnectResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.disconnects = append(p.disconnects, req)
	return &presencev1.DisconnectResponse{}, nil
}

// Heartbeat implements presencev1.PresenceServiceServer.
func (p *Peers) Heartbeat(_ context.Context, req *presencev1.HeartbeatRequest) (*presencev1.HeartbeatResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.heartbeats = append(p.heartbeats, req)
	return &presencev1.HeartbeatResponse{Known: p.known}, nil
}
