package ws

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/bachata-chat/bachata/libs/obs"
	"github.com/bachata-chat/bachata/libs/protocol"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	deliveryv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/delivery/v1"
	eventsv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/events/v1"
	"github.com/bachata-chat/bachata/services/gateway/internal/session"
)

// Deliver writes a batch that delivery published for this gateway. Each
// delivery goes to the connection it was attached with; one for a
// connection this gateway no longer holds is dropped, because delivery
// keeps it in flight and sends it again when the device next attaches.
// Deliver never blocks on a socket.
func (s *Server) Deliver(batch *eventsv1.DeliveryBatch) {
	s.DeliverContext(context.Background(), batch)
}

// DeliverContext is Deliver for a batch that arrived with trace context in
// ctx (its NATS headers, as natsx.ExtractTrace put it there). With tracing
// on, the batch's receipt is a "nats.receive" span in that trace, and each
// sampled message or receipt gets a "ws.write" span in its own trace (the
// context it carries), ended once the frame reached the socket.
func (s *Server) DeliverContext(ctx context.Context, batch *eventsv1.DeliveryBatch) {
	var link trace.Link
	if t := s.opts.Tracer; t != nil && trace.SpanContextFromContext(ctx).IsValid() {
		var span trace.Span
		ctx, span = t.Start(ctx, "nats.receive", trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "receive"),
			attribute.Int("messaging.batch.message_count", len(batch.GetDeliveries())),
		))
		defer span.End()
		link = trace.Link{SpanContext: span.SpanContext()}
	}
	for _, d := range batch.GetDeliveries() {
		s.deliver(ctx, link, d)
	}
}

func (s *Server) deliver(ctx context.Context, link trace.Link, d *eventsv1.Delivery) {
	key := session.Key{User: d.GetDevice().GetUser(), Device: d.GetDevice().GetDevice()}
	c, ok := s.reg.Get(key, d.GetConnectionId())
	if !ok {
		s.metrics.dropped.WithLabelValues("stale_connection").Inc()
		return
	}
	switch item := d.GetItem().(type) {
	case *eventsv1.Delivery_Message:
		frame, err := messageFrame(item.Message)
		if err != nil {
			s.metrics.dropped.WithLabelValues("bad_message").Inc()
			s.log.ErrorContext(obs.ContextWithTraceParent(c.ctx, item.Message.GetTraceParent()), "delivery not encodable",
				c.attrs("id", item.Message.GetId(), "err", err)...)
			return
		}
		_, span := s.startWrite(ctx, link, c, d, item.Message.GetId(), item.Message.GetTraceParent())
		if !c.send(frame, kindData, spanEnder(span)) {
			endFailed(span)
		}
	case *eventsv1.Delivery_Receipt:
		t := protocol.TransportType(item.Receipt.GetType())
		id := item.Receipt.GetMessageId()
		if t != protocol.TransportReceived && t != protocol.TransportDelivered || id == "" {
			s.metrics.dropped.WithLabelValues("bad_receipt").Inc()
			s.log.ErrorContext(c.ctx, "delivery receipt not writable", c.attrs("receipt_type", int(t), "id", id)...)
			return
		}
		wctx, span := s.startWrite(ctx, link, c, d, id, item.Receipt.GetTraceParent())
		// The receipt is confirmed once written, so delivery stops sending
		// it; if the socket dies first it stays in flight and comes again.
		// The confirmation continues the write's trace.
		if !c.send(transportFrame(t, id), transportKind(t), func() {
			if span != nil {
				span.End()
			}
			s.confirmReceipt(wctx, c.device, id)
		}) {
			endFailed(span)
		}
	default:
		s.metrics.dropped.WithLabelValues("empty").Inc()
	}
}

// startWrite starts the "ws.write" span of one delivery whose message or
// receipt carries trace context tp: a child of tp, linked to the batch's
// nats.receive span. It returns ctx and a nil span when tracing is off or
// the item's trace was not sampled.
func (s *Server) startWrite(ctx context.Context, link trace.Link, c *client, d *eventsv1.Delivery, id, tp string) (context.Context, trace.Span) {
	t := s.opts.Tracer
	if t == nil || tp == "" {
		return ctx, nil
	}
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("bachata.message.id", id),
			attribute.String("bachata.user", c.key.User),
			attribute.String("bachata.device", c.key.Device),
			attribute.String("bachata.connection", c.id),
			attribute.String("bachata.gateway", s.opts.GatewayID),
			attribute.Int("bachata.attempt", int(d.GetAttempt())),
		),
	}
	if link.SpanContext.IsValid() {
		opts = append(opts, trace.WithLinks(link))
	}
	return t.Start(obs.ContextWithTraceParent(ctx, tp), "ws.write", opts...)
}

// spanEnder is the written callback that ends span; nil for no span.
func spanEnder(span trace.Span) func() {
	if span == nil {
		return nil
	}
	return func() { span.End() }
}

// endFailed ends the span of a frame that was not queued.
func endFailed(span trace.Span) {
	if span != nil {
		span.SetStatus(otelcodes.Error, "write queue full")
		span.End()
	}
}

// confirmReceipt tells delivery a receipt reached the device. It runs on
// the connection's writer goroutine: it waits for a free slot, which
// slows that one connection when delivery is slow instead of piling up
// goroutines, then calls Ack in the background, in the trace of ctx when
// it holds one.
func (s *Server) confirmReceipt(ctx context.Context, device *commonv1.DeviceRef, id string) {
	s.ackSlots <- struct{}{}
	s.mu.Lock()
	if s.acksClosed {
		// Drained: the receipt stays in flight and is sent again.
		s.mu.Unlock()
		<-s.ackSlots
		return
	}
	s.ackers.Add(1)
	s.mu.Unlock()
	go func() {
		defer func() { <-s.ackSlots; s.ackers.Done() }()
		rctx, cancel := s.rpcContext()
		defer cancel()
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			rctx = trace.ContextWithSpanContext(rctx, sc)
		}
		if err := s.ack(rctx, &deliveryv1.AckRequest{Device: device, ReceiptIds: []string{id}}); err != nil {
			s.log.WarnContext(rctx, "receipt confirmation failed", "user", device.GetUser(), "device", device.GetDevice(), "id", id, "err", err)
		}
	}()
}

// ack calls delivery's Ack.
func (s *Server) ack(ctx context.Context, req *deliveryv1.AckRequest) error {
	if _, err := s.peers.Delivery.Ack(ctx, req); err != nil {
		s.metrics.rpcErrors.WithLabelValues("delivery.Ack").Inc()
		return fmt.Errorf("delivery ack: %w", err)
	}
	return nil
}
