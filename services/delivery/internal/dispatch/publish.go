package dispatch

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/bachata-chat/bachata/libs/natsx"
	"github.com/bachata-chat/bachata/libs/obs"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	eventsv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/events/v1"
	"github.com/bachata-chat/bachata/services/delivery/internal/queue"
)

// Publisher sends what the queues release over NATS: deliveries to the one
// gateway holding each device, dead letters and post-process reports as
// events. A publish that fails loses nothing: deliveries stay in flight in
// Redis and go out again on the visibility timeout or the next attach.
//
// With tracing on, each delivery of a sampled message or receipt gets a
// "delivery.push" span, a child of the trace context stored with it, and
// the delivery carries that span's context on to the gateway; each NATS
// publish gets a "nats.publish" span whose context travels in the message
// headers.
type Publisher struct {
	nats     *nats.Conn
	subjects natsx.Subjects
	logger   *slog.Logger
	metrics  *metrics
	// tracer is nil when tracing is off.
	tracer trace.Tracer
	now    func() time.Time
}

// Publish implements shard.Publisher.
func (p *Publisher) Publish(ctx context.Context, out queue.Pushed) {
	now := p.now().UnixMilli()
	for _, d := range out.Deliveries {
		if d.Attempt == 1 && d.Message != nil && d.Message.GetTimeMs() > 0 {
			p.metrics.lag.Observe(float64(max(now-d.Message.GetTimeMs(), 0)) / 1e3)
		}
	}
	p.deliveries(ctx, out.Deliveries)
	p.deadLetters(ctx, out.Dead)
	for _, u := range out.Undelivered {
		if p.send(ctx, p.subjects.MessageUndelivered(), u.Event()) {
			p.metrics.undelivered.Inc()
		}
	}
}

// deliveries publishes the deliveries of each gateway in order, batched up
// to the server's maximum payload.
func (p *Publisher) deliveries(ctx context.Context, ds []queue.Delivery) {
	if len(ds) == 0 {
		return
	}
	perGateway := make(map[string][]*eventsv1.Delivery)
	var spans map[string][]trace.Span
	var order []string
	for _, d := range ds {
		if _, ok := perGateway[d.GatewayID]; !ok {
			order = append(order, d.GatewayID)
		}
		ev := d.Event()
		if p.tracer != nil {
			if tp := d.TraceParent(); tp != "" {
				if spans == nil {
					spans = make(map[string][]trace.Span)
				}
				spans[d.GatewayID] = append(spans[d.GatewayID], p.startPush(ctx, d, ev, tp))
			}
		}
		perGateway[d.GatewayID] = append(perGateway[d.GatewayID], ev)
		if d.Attempt > 1 {
			p.metrics.redelivered.Inc()
		}
	}
	limit := int(p.nats.MaxPayload())
	for _, gw := range order {
		subject := p.subjects.GatewayDeliveries(gw)
		ok := true
		for _, b := range splitBatches(perGateway[gw], limit) {
			if p.send(ctx, subject, b, spans[gw]...) {
				p.metrics.pushed.Add(float64(len(b.GetDeliveries())))
			} else {
				ok = false
			}
		}
		for _, sp := range spans[gw] {
			if !ok {
				sp.SetStatus(codes.Error, "publish failed")
			}
			sp.End()
		}
	}
}

// startPush starts the push span of a delivery whose message or receipt
// carries trace context tp, and makes the event carry the span's context
// on: the gateway's write becomes its child. The span of the operation
// that released the delivery (an RPC), if any, is linked.
func (p *Publisher) startPush(ctx context.Context, d queue.Delivery, ev *eventsv1.Delivery, tp string) trace.Span {
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("bachata.message.id", d.MessageID),
			attribute.String("bachata.user", d.Device.GetUser()),
			attribute.String("bachata.device", d.Device.GetDevice()),
			attribute.String("bachata.gateway", d.GatewayID),
			attribute.Int("bachata.attempt", d.Attempt),
		),
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	sctx, span := p.tracer.Start(obs.ContextWithTraceParent(ctx, tp), "delivery.push", opts...)
	next := obs.TraceParent(sctx)
	switch item := ev.GetItem().(type) {
	case *eventsv1.Delivery_Message:
		// A copy: the message may be shared by the deliveries to several
		// devices (an ephemeral push), each with a push span of its own.
		m, _ := proto.Clone(item.Message).(*commonv1.Message)
		m.TraceParent = next
		ev.Item = &eventsv1.Delivery_Message{Message: m}
	case *eventsv1.Delivery_Receipt:
		item.Receipt.TraceParent = next
	}
	return span
}

// splitBatches packs deliveries, in order, into batches whose encoding fits
// limit bytes (limit ≤ 0: one batch). A delivery too large on its own still
// gets a batch of its own, and its publish fails visibly: it stays in flight
// and ends in the dead letters, and the server's max_payload must be raised.
func splitBatches(ds []*eventsv1.Delivery, limit int) []*eventsv1.DeliveryBatch {
	var out []*eventsv1.DeliveryBatch
	cur, size := &eventsv1.DeliveryBatch{}, 0
	for _, d := range ds {
		// A repeated field costs its tag and length prefix besides the
		// element: at most 1 + 10 bytes.
		n := proto.Size(d) + 11
		if limit > 0 && len(cur.Deliveries) > 0 && size+n > limit {
			out = append(out, cur)
			cur, size = &eventsv1.DeliveryBatch{}, 0
		}
		cur.Deliveries = append(cur.Deliveries, d)
		size += n
	}
	return append(out, cur)
}

func (p *Publisher) deadLetters(ctx context.Context, dead []queue.DeadLetter) {
	for _, d := range dead {
		p.metrics.deadLetters.Inc()
		// Logged in the entry's own trace, when it has one.
		p.logger.WarnContext(obs.ContextWithTraceParent(ctx, d.TraceParent()), "entry moved to dead letters", "user", d.Device.GetUser(), "device", d.Device.GetDevice(),
			"reason", d.Reason.String(), "attempts", d.Attempts, "id", d.MessageID)
		p.send(ctx, p.subjects.DeadLetter(), d.Event())
	}
}

func (p *Publisher) delivered(ctx context.Context, ev *eventsv1.MessageDelivered) {
	if p.send(ctx, p.subjects.MessageDelivered(), ev) {
		p.metrics.delivered.Inc()
	}
}

// send publishes m on subject. With tracing on it runs in a "nats.publish"
// span, whose context goes in the message headers: a child of the span in
// ctx, or, when ctx has none, of the one push span the message carries,
// linked to each of them when it carries several (a batch mixes traces).
// Without any of those it makes no span and no headers.
func (p *Publisher) send(ctx context.Context, subject string, m proto.Message, pushes ...trace.Span) bool {
	payload, err := proto.Marshal(m)
	if err != nil {
		p.logger.ErrorContext(ctx, "encode event", "subject", subject, "err", err)
		return false
	}
	msg := &nats.Msg{Subject: subject, Data: payload}
	if p.tracer != nil && (len(pushes) > 0 || trace.SpanContextFromContext(ctx).IsValid()) {
		pctx, span := p.startPublish(ctx, subject, pushes)
		defer span.End()
		natsx.InjectTrace(pctx, msg)
		ctx = pctx
	}
	if err := p.nats.PublishMsg(msg); err != nil {
		trace.SpanFromContext(ctx).SetStatus(codes.Error, err.Error())
		p.metrics.publishErrors.Inc()
		p.logger.WarnContext(ctx, "publish", "subject", subject, "err", err)
		return false
	}
	return true
}

// maxLinks bounds the links of one publish span (the SDK keeps 128).
const maxLinks = 64

func (p *Publisher) startPublish(ctx context.Context, subject string, pushes []trace.Span) (context.Context, trace.Span) {
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.destination.name", subject),
		),
	}
	parent := ctx
	if !trace.SpanContextFromContext(ctx).IsValid() && len(pushes) == 1 {
		parent = trace.ContextWithSpan(ctx, pushes[0])
	} else {
		links := make([]trace.Link, 0, min(len(pushes), maxLinks))
		for _, sp := range pushes[:min(len(pushes), maxLinks)] {
			links = append(links, trace.Link{SpanContext: sp.SpanContext()})
		}
		opts = append(opts, trace.WithLinks(links...))
	}
	return p.tracer.Start(parent, "nats.publish", opts...)
}
