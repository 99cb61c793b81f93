package routing

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/bachata-chat/bachata/libs/obs"
	"github.com/bachata-chat/bachata/libs/protocol"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	deliveryv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/delivery/v1"
	routerv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/router/v1"
	"github.com/bachata-chat/bachata/services/router/chain"
)

// DefaultEnqueueTimeout bounds one Enqueue call when Options leave it zero.
const DefaultEnqueueTimeout = 5 * time.Second

// Enqueuer is the part of the delivery service the router uses;
// deliveryv1.DeliveryServiceClient satisfies it.
type Enqueuer interface {
	Enqueue(ctx context.Context, in *deliveryv1.EnqueueRequest, opts ...grpc.CallOption) (*deliveryv1.EnqueueResponse, error)
	Push(ctx context.Context, in *deliveryv1.PushRequest, opts ...grpc.CallOption) (*deliveryv1.PushResponse, error)
}

// Options configure a Service. Chain, Delivery and Logger are required.
type Options struct {
	// Chain decides what happens to each message.
	Chain *chain.Chain
	// Delivery queues what the chain decided to deliver.
	Delivery Enqueuer
	// RequireSign refuses device messages without "sign" (4200). A sign
	// that is present is verified either way.
	RequireSign bool
	// EnqueueTimeout bounds one Enqueue call; zero means
	// DefaultEnqueueTimeout.
	EnqueueTimeout time.Duration
	// Logger receives the service's logs.
	Logger *slog.Logger
	// Registerer receives the service's metrics; nil leaves them
	// unregistered (tests).
	Registerer prometheus.Registerer
	// Now is the clock that stamps messages; nil means time.Now.
	Now func() time.Time
}

// Service implements routerv1.RouterServiceServer. It keeps no per-message
// state, so it is safe for concurrent use and any number of routers can
// serve the same gateways.
type Service struct {
	routerv1.UnimplementedRouterServiceServer

	chain          *chain.Chain
	delivery       Enqueuer
	requireSign    bool
	enqueueTimeout time.Duration
	logger         *slog.Logger
	now            func() time.Time
	m              *metrics
}

// New returns a Service, or ErrBadOptions when a required option is
// missing, or the error of registering its metrics.
func New(o Options) (*Service, error) {
	if o.Chain == nil || o.Delivery == nil || o.Logger == nil {
		return nil, fmt.Errorf("new routing service: %w: chain, delivery and logger are required", ErrBadOptions)
	}
	s := &Service{
		chain:          o.Chain,
		delivery:       o.Delivery,
		requireSign:    o.RequireSign,
		enqueueTimeout: o.EnqueueTimeout,
		logger:         o.Logger,
		now:            o.Now,
		m:              newMetrics(),
	}
	if s.enqueueTimeout <= 0 {
		s.enqueueTimeout = DefaultEnqueueTimeout
	}
	if s.now == nil {
		s.now = time.Now
	}
	if o.Registerer != nil {
		if err := s.m.register(o.Registerer); err != nil {
			return nil, fmt.Errorf("new routing service: register metrics: %w", err)
		}
	}
	return s, nil
}

// Route implements routerv1.RouterServiceServer: it answers with an outcome
// for the sender, or a gRPC status when the message could not be handled
// and was not accepted.
func (s *Service) Route(ctx context.Context, req *routerv1.RouteRequest) (*routerv1.RouteResponse, error) {
	resp, err := s.route(ctx, req)
	if err != nil {
		return nil, toStatus(ctx, err)
	}
	s.m.outcomes.WithLabelValues(outcomeLabel(resp.GetOutcome())).Inc()
	if e := resp.GetError(); e != nil {
		code := protocol.Code(e.GetCode())
		s.m.rejected.WithLabelValues(code.Name()).Inc()
		// Debug only: rejections are the client's mistakes, counted above;
		// at info a misbehaving client could flood the logs.
		s.logger.DebugContext(ctx, "message rejected",
			"id", req.GetMessage().GetId(), "type", req.GetMessage().GetType(),
			"sender", req.GetSender().GetDevice().GetUser(), "code", code.String(), "route", resp.GetRoute())
	}
	return resp, nil
}

func (s *Service) route(ctx context.Context, req *routerv1.RouteRequest) (*routerv1.RouteResponse, error) {
	r, err := requestOf(req)
	if err != nil {
		s.m.failures.WithLabelValues("request").Inc()
		return nil, err
	}
	m := r.Message
	if perr := checkMessage(m); perr != nil {
		return rejected(perr, "", 0), nil
	}
	if !r.System() && !s.chain.SignOptional(m) {
		if perr := s.checkSign(r.SessionKey, m); perr != nil {
			return rejected(perr, "", 0), nil
		}
	}
	// Stamped after the signature check: the signature covers the message
	// as the client sent it, and a client's from and time are never
	// trusted past this point.
	m.From = r.Sender.GetUser()
	m.TimeMs = s.now().UnixMilli()
	// The message carries its trace from here on (empty when not sampled);
	// nothing a peer sent in the field survives.
	m.TraceParent = obs.TraceParent(ctx)

	res, err := s.chain.Run(ctx, r)
	if err != nil {
		s.m.failures.WithLabelValues("route").Inc()
		return nil, err
	}
	d := res.Decision
	switch d.Kind() {
	case chain.KindReject:
		return rejected(d.Rejection(), res.Route, m.GetTimeMs()), nil
	case chain.KindReply:
		return &routerv1.RouteResponse{
			Outcome: routerv1.Outcome_OUTCOME_REPLIED,
			Replies: d.Replies(),
			Route:   res.Route,
			TimeMs:  m.GetTimeMs(),
		}, nil
	case chain.KindDeliver:
		return s.deliver(ctx, r, res)
	case chain.KindSend:
		return s.send(ctx, r, res)
	default:
		// Run never returns Pass; a new Kind must be handled here.
		s.m.failures.WithLabelValues("route").Inc()
		return nil, fmt.Errorf("route %s: decision %s: %w", res.Route, d.Kind(), chain.ErrBadDecision)
	}
}

// deliver queues the message for the decided recipients and, once queued,
// lets the route post-process it.
func (s *Service) deliver(ctx context.Context, r *chain.Request, res chain.Result) (*routerv1.RouteResponse, error) {
	d := res.Decision.Delivery()
	ectx, cancel := context.WithTimeout(ctx, s.enqueueTimeout)
	defer cancel()
	start := time.Now()
	out, err := s.delivery.Enqueue(ectx, &deliveryv1.EnqueueRequest{
		Message:    r.Message,
		Sender:     r.Sender,
		Recipients: d.Recipients,
		Receipt:    d.Receipt,
	})
	s.m.enqueueDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		s.m.failures.WithLabelValues("delivery").Inc()
		return nil, fmt.Errorf("route %s: message %q: %w: %w", res.Route, r.Message.GetId(), ErrDelivery, err)
	}
	resp := &routerv1.RouteResponse{
		Outcome: routerv1.Outcome_OUTCOME_QUEUED,
		Route:   res.Route,
		TimeMs:  r.Message.GetTimeMs(),
	}
	if out.GetDuplicate() {
		// Accepted before: the sender gets its 100 again, and the hooks
		// already ran when it was first queued.
		resp.Outcome = routerv1.Outcome_OUTCOME_DUPLICATE
		return resp, nil
	}
	q := chain.Queued{Delivery: d, Devices: int(out.GetDevices())}
	if err := s.chain.PostProcess(ctx, res, r, q); err != nil {
		s.logger.WarnContext(ctx, "post-process failed; message stays accepted",
			"route", res.Route, "id", r.Message.GetId(), "from", r.Message.GetFrom(), "err", err)
	}
	return resp, nil
}

// send pushes an ephemeral message to the recipients' online devices. It is
// not stored, so there is no 100 for it (OUTCOME_SENT); when delivery is
// unreachable the sender gets the usual retryable error.
func (s *Service) send(ctx context.Context, r *chain.Request, res chain.Result) (*routerv1.RouteResponse, error) {
	ectx, cancel := context.WithTimeout(ctx, s.enqueueTimeout)
	defer cancel()
	if _, err := s.delivery.Push(ectx, &deliveryv1.PushRequest{
		Message:    r.Message,
		Recipients: res.Decision.Delivery().Recipients,
	}); err != nil {
		s.m.failures.WithLabelValues("delivery").Inc()
		return nil, fmt.Errorf("route %s: message %q: %w: %w", res.Route, r.Message.GetId(), ErrDelivery, err)
	}
	return &routerv1.RouteResponse{
		Outcome: routerv1.Outcome_OUTCOME_SENT,
		Route:   res.Route,
		TimeMs:  r.Message.GetTimeMs(),
	}, nil
}

// rejected is the answer to a message the sender got wrong.
func rejected(e *protocol.Error, route string, timeMs int64) *routerv1.RouteResponse {
	return &routerv1.RouteResponse{
		Outcome: routerv1.Outcome_OUTCOME_REJECTED,
		Error: &commonv1.ErrorDetail{
			Code:    int32(e.Code), //nolint:gosec // codes are small constants
			Text:    e.ErrText(),
			Payload: e.Payload,
		},
		Route:  route,
		TimeMs: timeMs,
	}
}
