// Package dispatch is the delivery service's gRPC API: it runs the queue
// operations and publishes what they release to the gateways holding the
// devices, one NATS subject per gateway, so no gateway sees traffic for
// devices it does not hold.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bachata-chat/bachata/libs/natsx"
	"github.com/bachata-chat/bachata/libs/obs"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	deliveryv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/delivery/v1"
	eventsv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/events/v1"
	"github.com/bachata-chat/bachata/services/delivery/internal/queue"
)

// Service implements deliveryv1.DeliveryServiceServer. Its calls change
// the queues and mark devices ready; the owner of each device's shard
// pushes them (package shard), through the same Publisher.
type Service struct {
	deliveryv1.UnimplementedDeliveryServiceServer

	store    *queue.Store
	nats     *nats.Conn
	pub      *Publisher
	logger   *slog.Logger
	metrics  *metrics
	subjects natsx.Subjects
	// tracer is nil when tracing is off.
	tracer trace.Tracer
}

// tracerName names the spans the delivery service makes itself.
const tracerName = "github.com/bachata-chat/bachata/services/delivery"

// New returns a Service publishing on nc and registering its metrics on reg.
// Its spans go to the global tracer provider when tracing is on
// (obs.TracingEnabled at the time of the call).
func New(store *queue.Store, nc *nats.Conn, subjects natsx.Subjects, logger *slog.Logger, reg prometheus.Registerer) (*Service, error) {
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	tracer := obs.Tracer(tracerName)
	pub := &Publisher{nats: nc, subjects: subjects, logger: logger, metrics: m, tracer: tracer, now: time.Now}
	return &Service{store: store, nats: nc, pub: pub, logger: logger, metrics: m, subjects: subjects, tracer: tracer}, nil
}

// stampTrace makes msg carry the sampled span of ctx (the call's server
// span), so what happens to it later, when a shard owner pushes it, joins
// its trace. Without one (tracing off here) it keeps what the router set.
func stampTrace(ctx context.Context, msg *commonv1.Message) {
	if tp := obs.TraceParent(ctx); tp != "" {
		msg.TraceParent = tp
	}
}

// Publisher is what the shard owners publish through.
func (s *Service) Publisher() *Publisher { return s.pub }

func validDevice(d *commonv1.DeviceRef) bool {
	return d != nil && d.GetUser() != "" && d.GetDevice() != ""
}

// storeErr maps a queue failure to a gRPC status once, here at the edge.
func storeErr(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.Errorf(codes.DeadlineExceeded, "%s: %v", op, err)
	}
	return status.Errorf(codes.Unavailable, "%s: %v", op, err)
}

// Enqueue queues the message for every device of every recipient. It
// returns only after Redis acknowledged every recipient's enqueue, which is
// what lets the gateway send the 100.
func (s *Service) Enqueue(ctx context.Context, req *deliveryv1.EnqueueRequest) (*deliveryv1.EnqueueResponse, error) {
	msg := req.GetMessage()
	if msg.GetId() == "" || msg.GetType() == "" || len(req.GetRecipients()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "enqueue: message id, type and at least one recipient are required")
	}
	stampTrace(ctx, msg)
	resp := &deliveryv1.EnqueueResponse{Duplicate: true}
	for _, r := range req.GetRecipients() {
		if room := r.GetRoom(); room != "" {
			if r.GetUser() != "" {
				return nil, status.Error(codes.InvalidArgument, "enqueue: a recipient names a user or a room, not both")
			}
			res, err := s.store.EnqueueRoom(ctx, msg, req.GetSender(), room, req.GetReceipt())
			if err != nil {
				return nil, storeErr("enqueue room", err)
			}
			if res.Members > 0 {
				resp.Duplicate = false
			}
			resp.Devices += int32(min(res.Devices, 1<<30)) //nolint:gosec // clamped
			s.pub.deadLetters(ctx, res.Dead)
			continue
		}
		if r.GetUser() == "" {
			return nil, status.Error(codes.InvalidArgument, "enqueue: recipient without user or room")
		}
		res, err := s.store.Enqueue(ctx, msg, req.GetSender(), queue.Recipient{
			User:          r.GetUser(),
			ExcludeDevice: r.GetExcludeDevice(),
			Copy:          r.GetCopy(),
			Receipt:       req.GetReceipt() && !r.GetCopy(),
		})
		if err != nil {
			return nil, storeErr("enqueue", err)
		}
		if !res.Duplicate {
			resp.Duplicate = false
		}
		resp.Devices += int32(res.Devices) //nolint:gosec // bounded by a user's device count
		s.pub.deadLetters(ctx, res.Dead)
	}
	s.metrics.enqueued.Add(float64(resp.GetDevices()))
	return resp, nil
}

// Push publishes an ephemeral message to the recipients' devices attached
// now. Nothing is stored, so nothing is sent again: a device offline, or
// whose gateway misses the publish, never gets it.
func (s *Service) Push(ctx context.Context, req *deliveryv1.PushRequest) (*deliveryv1.PushResponse, error) {
	msg := req.GetMessage()
	if msg.GetId() == "" || msg.GetType() == "" || len(req.GetRecipients()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "push: message id, type and at least one recipient are required")
	}
	stampTrace(ctx, msg)
	var out []queue.Delivery
	for _, r := range req.GetRecipients() {
		if r.GetUser() == "" {
			return nil, status.Error(codes.InvalidArgument, "push: recipient without user")
		}
		ds, err := s.store.Attached(ctx, r.GetUser(), r.GetExcludeDevice(), msg)
		if err != nil {
			return nil, storeErr("push", err)
		}
		out = append(out, ds...)
	}
	s.pub.deliveries(ctx, out)
	return &deliveryv1.PushResponse{Devices: int32(min(len(out), 1<<30))}, nil //nolint:gosec // clamped
}

// Attach binds the device to its connection; its shard's owner then pushes
// its queue there, in-flight messages first.
func (s *Service) Attach(ctx context.Context, req *deliveryv1.AttachRequest) (*deliveryv1.AttachResponse, error) {
	if !validDevice(req.GetDevice()) || req.GetGatewayId() == "" || req.GetConnectionId() == "" {
		return nil, status.Error(codes.InvalidArgument, "attach: device, gateway_id and connection_id are required")
	}
	queued, err := s.store.Attach(ctx, req.GetDevice(), req.GetGatewayId(), req.GetConnectionId())
	if err != nil {
		return nil, storeErr("attach", err)
	}
	return &deliveryv1.AttachResponse{Queued: int64(queued)}, nil
}

// Detach unbinds the device if the connection is still the current one;
// what was in flight goes back to the head of its queue.
func (s *Service) Detach(ctx context.Context, req *deliveryv1.DetachRequest) (*deliveryv1.DetachResponse, error) {
	if !validDevice(req.GetDevice()) || req.GetConnectionId() == "" {
		return nil, status.Error(codes.InvalidArgument, "detach: device and connection_id are required")
	}
	if err := s.store.Detach(ctx, req.GetDevice(), req.GetConnectionId()); err != nil {
		return nil, storeErr("detach", err)
	}
	return &deliveryv1.DetachResponse{}, nil
}

// Ack removes acked messages from flight and queues the sender's 300 when
// this was the first device of the recipient to ack.
func (s *Service) Ack(ctx context.Context, req *deliveryv1.AckRequest) (*deliveryv1.AckResponse, error) {
	if !validDevice(req.GetDevice()) {
		return nil, status.Error(codes.InvalidArgument, "ack: device is required")
	}
	var acked int32
	if ids := req.GetMessageIds(); len(ids) > 0 {
		res, err := s.store.Ack(ctx, req.GetDevice(), ids)
		if err != nil {
			return nil, storeErr("ack", err)
		}
		acked += int32(res.Acked) //nolint:gosec // bounded by the request size
		s.metrics.acked.Add(float64(res.Acked))
		traced := s.ackSpans(ctx, req.GetDevice(), res.Messages)
		defer traced.end()
		for _, r := range res.Receipts {
			// The 300 is queued in the sender's own device queue, so it
			// survives the sender being offline. The ack recorded it in the
			// outbox too: if this fails, the shard's owner queues it later.
			// It is queued in the ack's span of its message, whose trace
			// it then carries.
			rctx := traced.context(ctx, r.MessageID)
			if err := s.store.PushReceipt(rctx, r.To, r.MessageID, queue.ReceiptDelivered); err != nil {
				return nil, storeErr("push receipt", err)
			}
			if err := s.store.ReceiptQueued(rctx, res.Shard, r); err != nil {
				s.logger.WarnContext(rctx, "receipt queued but left in the outbox", "id", r.MessageID, "err", err)
			}
			s.metrics.receipts.Inc()
		}
		for _, d := range res.Delivered {
			s.pub.delivered(ctx, &eventsv1.MessageDelivered{
				Recipient: req.GetDevice().GetUser(), Device: req.GetDevice().GetDevice(),
				Sender: d.To, MessageId: d.MessageID,
			})
		}
	}
	if ids := req.GetReceiptIds(); len(ids) > 0 {
		res, err := s.store.AckReceipts(ctx, req.GetDevice(), ids)
		if err != nil {
			return nil, storeErr("ack receipts", err)
		}
		acked += int32(res.Acked) //nolint:gosec // bounded by the request size
	}
	return &deliveryv1.AckResponse{Acked: acked}, nil
}

// WatchGatewayDown detaches every connection of a gateway that presence
// declared dead, so what was in flight there is queued again for the
// device's next connection. Instances share the work through a queue group.
func (s *Service) WatchGatewayDown(ctx context.Context) error {
	sub, err := s.nats.QueueSubscribe(s.subjects.GatewayDown(), "delivery", func(m *nats.Msg) {
		var ev eventsv1.GatewayDown
		if err := proto.Unmarshal(m.Data, &ev); err != nil {
			s.logger.WarnContext(ctx, "bad gateway-down event", "err", err)
			return
		}
		for _, c := range ev.GetConnections() {
			if err := s.store.Detach(ctx, c.GetDevice(), c.GetConnectionId()); err != nil {
				s.logger.WarnContext(ctx, "detach after gateway down", "gateway", ev.GetGatewayId(), "err", err)
			}
		}
		s.logger.InfoContext(ctx, "gateway down: connections detached", "gateway", ev.GetGatewayId(), "connections", len(ev.GetConnections()))
	})
	if err != nil {
		return fmt.Errorf("subscribe gateway-down: %w", err)
	}
	<-ctx.Done()
	if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("unsubscribe gateway-down: %w", err)
	}
	return nil
}

// ackTraces are the "delivery.ack" spans of one Ack call, by message id.
type ackTraces map[string]ackSpan

type ackSpan struct {
	ctx  context.Context
	span trace.Span
}

// ackSpans observes the ack latency of each acked message and, with
// tracing on, starts a "delivery.ack" span for each one whose trace was
// sampled: a child of the trace context stored with the message, so the
// ack joins the message's trace, linked to this call's own span. The
// gateway acks many messages in one call, so the call itself cannot be
// part of every message's trace.
func (s *Service) ackSpans(ctx context.Context, device *commonv1.DeviceRef, msgs []queue.AckedMessage) ackTraces {
	var out ackTraces
	for _, m := range msgs {
		if m.Latency >= 0 {
			s.metrics.ackLatency.Observe(m.Latency.Seconds())
		}
		if s.tracer == nil || m.TraceParent == "" {
			continue
		}
		opts := []trace.SpanStartOption{trace.WithAttributes(
			attribute.String("bachata.message.id", m.ID),
			attribute.String("bachata.user", device.GetUser()),
			attribute.String("bachata.device", device.GetDevice()),
		)}
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
		}
		sctx, span := s.tracer.Start(obs.ContextWithTraceParent(ctx, m.TraceParent), "delivery.ack", opts...)
		if m.Latency >= 0 {
			span.SetAttributes(attribute.Int64("bachata.ack_latency_ms", m.Latency.Milliseconds()))
		}
		if out == nil {
			out = make(ackTraces)
		}
		out[m.ID] = ackSpan{ctx: sctx, span: span}
	}
	return out
}

// context is the context to continue message id's work in: its ack span's
// when it has one, else ctx.
func (t ackTraces) context(ctx context.Context, id string) context.Context {
	if a, ok := t[id]; ok {
		return a.ctx
	}
	return ctx
}

func (t ackTraces) end() {
	for _, a := range t {
		a.span.End()
	}
}
