package ws

import (
	"context"
	"strconv"
	"time"

	"github.com/bachata-chat/bachata/libs/protocol"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	deliveryv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/delivery/v1"
	routerv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/router/v1"
	"github.com/bachata-chat/bachata/services/gateway/internal/ratelimit"
	"github.com/bachata-chat/bachata/services/gateway/internal/wsio"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// HandleMessage implements wsio.Handler: one client frame. Frames of one
// connection are handled one at a time, in order, on its reader; so data
// messages from one connection are routed strictly in order, which keeps
// order per sender and device, while other connections run in parallel.
// Nothing a client sends closes the connection here: bad frames get an
// ":error" reply.
func (c *client) HandleMessage(typ wsio.MessageType, payload []byte) {
	s := c.srv
	if typ == wsio.Binary {
		s.metrics.framesIn.WithLabelValues(kindBinary).Inc()
		c.replyError(protocol.NewError(protocol.CodeBinaryFrame))
		return
	}
	f, err := decode(payload, s.opts.IO.MaxMessage)
	if err == nil {
		err = protocol.CheckClientFrame(f)
	}
	if err != nil {
		s.metrics.framesIn.WithLabelValues(kindInvalid).Inc()
		c.replyError(protocol.AsError(err))
		return
	}
	switch f := f.(type) {
	case *protocol.TransportMessage:
		s.metrics.framesIn.WithLabelValues(transportKind(f.Type)).Inc()
		switch f.Type {
		case protocol.TransportPing:
			c.send(transportFrame(protocol.TransportPong, ""), transportKind(protocol.TransportPong), nil)
		case protocol.TransportAck:
			c.ackMessage(f.Data)
		}
		// A pong only proves liveness, which the reader recorded already.
	case *protocol.DataMessage:
		s.metrics.framesIn.WithLabelValues(kindData).Inc()
		ctx, span := c.startReceive(f)
		defer span.End()
		if c.limited(f) {
			span.SetStatus(otelcodes.Error, "rate limited")
			return
		}
		if s.opts.Presence != nil && (f.Type == protocol.TypePresenceSubscribe || f.Type == protocol.TypePresenceUnsubscribe) {
			c.presenceRequest(f)
			return
		}
		c.route(ctx, span, f)
	}
}

// receiveSpanNames name the "ws.receive" span of the data types the suite
// knows; any other type, which clients choose, shares one name so span
// names stay a bounded set (the exact type is an attribute).
var receiveSpanNames = map[string]string{
	protocol.TypeDirect: "ws.receive direct", protocol.TypeGroup: "ws.receive group",
	protocol.TypeApp: "ws.receive app", protocol.TypeHandshake: "ws.receive handshake",
	protocol.TypeTyping: "ws.receive typing", protocol.TypePresenceSubscribe: "ws.receive presence.subscribe",
	protocol.TypePresenceUnsubscribe: "ws.receive presence.unsubscribe",
}

// startReceive starts the root span of a data message's trace, "ws.receive
// <type>": it covers routing the message and writing the reply, and its
// context goes to the router with the Route call. With tracing off it
// returns the connection's context and a no-op span, at no cost.
func (c *client) startReceive(m *protocol.DataMessage) (context.Context, trace.Span) {
	t := c.srv.opts.Tracer
	if t == nil {
		return c.ctx, trace.SpanFromContext(c.ctx)
	}
	name, ok := receiveSpanNames[m.Type]
	if !ok {
		name = "ws.receive other"
	}
	// No message bodies in spans: ids and names only.
	return t.Start(c.ctx, name, trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		attribute.String("bachata.message.id", m.ID),
		attribute.String("bachata.message.type", m.Type),
		attribute.String("bachata.user", c.key.User),
		attribute.String("bachata.device", c.key.Device),
		attribute.String("bachata.connection", c.id),
		attribute.String("bachata.gateway", c.srv.opts.GatewayID),
	))
}

// limited applies the user's rate limit to a data message: over it, the
// message is answered with 4290 and dropped, and a connection that keeps
// going is closed with 1008.
func (c *client) limited(m *protocol.DataMessage) bool {
	l := c.srv.opts.Limiter
	if l == nil {
		return false
	}
	switch l.Judge(&c.strikes, l.Take(c.device.GetUser())) {
	case ratelimit.Allow:
		return false
	case ratelimit.Close:
		c.srv.metrics.rateLimited.WithLabelValues("closed").Inc()
		c.replyError(protocol.NewError(protocol.CodeRateLimited).For(m.ID, m.Type))
		c.srv.log.InfoContext(c.ctx, "closing a connection that keeps exceeding its rate limit", c.attrs()...)
		c.close(wsio.ClosePolicyViolation, "rate limit")
	default:
		c.srv.metrics.rateLimited.WithLabelValues("refused").Inc()
		c.replyError(protocol.NewError(protocol.CodeRateLimited).For(m.ID, m.Type))
	}
	return true
}

// ackMessage queues a client's 200 for delivery. Acks are sent in the
// background, several in one call, so a client acking a burst of messages
// is not held up one round trip per ack and the reader goes on at once.
// An ack is not bounded by the connection's life: one that arrived should
// count even if the socket closes meanwhile, or the message comes again.
func (c *client) ackMessage(id string) {
	c.acks.mu.Lock()
	defer c.acks.mu.Unlock()
	c.acks.ids = append(c.acks.ids, id)
	if c.acks.done != nil {
		return // the running flush takes it
	}
	done := make(chan struct{})
	c.acks.done = done
	s := c.srv
	s.mu.Lock()
	tracked := !s.acksClosed
	if tracked {
		s.ackers.Add(1)
	}
	s.mu.Unlock()
	go func() {
		if tracked {
			defer s.ackers.Done()
		}
		defer close(done)
		c.flushAcks()
	}()
}

// maxAckBatch bounds the message IDs of one Ack call.
const maxAckBatch = 256

// flushAcks sends the queued acks until none is left.
func (c *client) flushAcks() {
	s := c.srv
	s.ackSlots <- struct{}{}
	defer func() { <-s.ackSlots }()
	for {
		c.acks.mu.Lock()
		n := min(len(c.acks.ids), maxAckBatch)
		if n == 0 {
			c.acks.ids, c.acks.done = nil, nil
			c.acks.mu.Unlock()
			return
		}
		ids := append([]string(nil), c.acks.ids[:n]...)
		c.acks.ids = c.acks.ids[n:]
		c.acks.mu.Unlock()
		ctx, cancel := s.rpcContext()
		if err := s.ack(ctx, &deliveryv1.AckRequest{Device: c.device, MessageIds: ids}); err != nil {
			// Nothing to tell the client: the messages stay in flight and
			// are delivered again, and the client acks them again.
			s.log.WarnContext(ctx, "message ack failed", c.attrs("ids", len(ids), "err", err)...)
		}
		cancel()
	}
}

// waitAcks waits for the acks queued so far to reach delivery, so the
// close path detaches the device only after them: what the client acked
// does not come again on its next connection.
func (c *client) waitAcks() {
	c.acks.mu.Lock()
	done := c.acks.done
	c.acks.mu.Unlock()
	if done != nil {
		<-done
	}
}

// route sends a data message to the router with the authenticated sender
// and writes what the outcome calls for. ctx holds the message's
// ws.receive span (span), which the Route call and the logs continue.
func (c *client) route(ctx context.Context, span trace.Span, m *protocol.DataMessage) {
	s := c.srv
	req := &routerv1.RouteRequest{
		Sender: &routerv1.Sender{
			Device:       c.device,
			GatewayId:    s.opts.GatewayID,
			ConnectionId: c.id,
			SessionKey:   c.session(),
		},
		Message: &commonv1.Message{
			Id: m.ID, Type: m.Type, TimeMs: m.Time, From: m.From, Dest: m.Dest, Data: m.Data, Sign: m.Sign,
		},
	}
	rctx, cancel := context.WithTimeout(ctx, s.opts.RPCTimeout)
	start := time.Now()
	resp, err := s.peers.Router.Route(rctx, req)
	cancel()
	if err != nil {
		s.metrics.route.WithLabelValues("error").Observe(time.Since(start).Seconds())
		s.metrics.rpcErrors.WithLabelValues("router.Route").Inc()
		span.SetStatus(otelcodes.Error, "route failed")
		if c.ctx.Err() != nil {
			return // the gateway is closing this connection; the client resends after reconnecting
		}
		s.log.WarnContext(ctx, "route failed", c.attrs("id", m.ID, "err", err)...)
		c.replyError(routeError(err).For(m.ID, m.Type))
		return
	}
	s.metrics.route.WithLabelValues(outcomeLabel(resp.GetOutcome())).Observe(time.Since(start).Seconds())
	if span.IsRecording() {
		span.SetAttributes(attribute.String("bachata.outcome", outcomeLabel(resp.GetOutcome())), attribute.String("bachata.route", resp.GetRoute()))
	}
	switch resp.GetOutcome() {
	case routerv1.Outcome_OUTCOME_QUEUED, routerv1.Outcome_OUTCOME_DUPLICATE:
		c.send(transportFrame(protocol.TransportReceived, m.ID), transportKind(protocol.TransportReceived), nil)
	case routerv1.Outcome_OUTCOME_SENT:
		// Ephemeral: delivered to online devices only, no receipt.
	case routerv1.Outcome_OUTCOME_REPLIED:
		for _, r := range resp.GetReplies() {
			frame, err := messageFrame(r)
			if err != nil {
				s.log.ErrorContext(ctx, "router reply not encodable", c.attrs("id", r.GetId(), "err", err)...)
				c.replyError(protocol.NewError(protocol.CodeInternal).For(m.ID, m.Type))
				continue
			}
			c.send(frame, kindData, nil)
		}
	case routerv1.Outcome_OUTCOME_REJECTED:
		d := resp.GetError()
		code := protocol.Code(d.GetCode())
		if code == 0 {
			code = protocol.CodeInternal // a rejection must say why; the router did not
		}
		c.replyError(&protocol.Error{Code: code, Text: d.GetText(), Payload: d.GetPayload(), ID: m.ID, Type: m.Type})
	default:
		s.log.ErrorContext(ctx, "router answered an unknown outcome", c.attrs("id", m.ID, "outcome", int32(resp.GetOutcome()))...)
		c.replyError(protocol.NewError(protocol.CodeInternal).For(m.ID, m.Type))
	}
}

// routeError maps a failed Route call to the client's error. A deadline
// means the message may or may not have been accepted (5002); anything
// else means it was not (5001). Both are retryable with the same id,
// because the router dedupes on (sender, id).
func routeError(err error) *protocol.Error {
	code := protocol.CodeUnavailable
	if status.Code(err) == codes.DeadlineExceeded {
		code = protocol.CodeTimeout
	}
	return &protocol.Error{Code: code, Err: err}
}

// outcomeLabel is the metric label of an outcome.
func outcomeLabel(o routerv1.Outcome) string {
	switch o {
	case routerv1.Outcome_OUTCOME_QUEUED:
		return "queued"
	case routerv1.Outcome_OUTCOME_DUPLICATE:
		return "duplicate"
	case routerv1.Outcome_OUTCOME_SENT:
		return "sent"
	case routerv1.Outcome_OUTCOME_REPLIED:
		return "replied"
	case routerv1.Outcome_OUTCOME_REJECTED:
		return "rejected"
	}
	return "unknown"
}

// replyError writes an ":error" envelope.
func (c *client) replyError(e *protocol.Error) {
	c.srv.metrics.errors.WithLabelValues(strconv.Itoa(int(e.Code))).Inc()
	c.send(protocol.AppendError(nil, e), kindError, nil)
}
