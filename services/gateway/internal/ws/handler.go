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
		if c.limited(f) {
			return
		}
		c.route(f)
	}
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

// ackMessage forwards a client's 200 to delivery. It is not bounded by the
// connection's life: an ack that arrived should count even if the socket
// closes meanwhile, or the message comes again.
func (c *client) ackMessage(id string) {
	s := c.srv
	ctx, cancel := s.rpcContext()
	defer cancel()
	if err := s.ack(ctx, &deliveryv1.AckRequest{Device: c.device, MessageIds: []string{id}}); err != nil {
		// Nothing to tell the client: the message stays in flight and is
		// delivered again, and the client acks it again.
		s.log.WarnContext(ctx, "message ack failed", c.attrs("id", id, "err", err)...)
	}
}

// route sends a data message to the router with the authenticated sender
// and writes what the outcome calls for.
func (c *client) route(m *protocol.DataMessage) {
	s := c.srv
	req := &routerv1.RouteRequest{
		Sender: &routerv1.Sender{
			Device:       c.device,
			GatewayId:    s.opts.GatewayID,
			ConnectionId: c.id,
			SessionKey:   c.sessionKey,
		},
		Message: &commonv1.Message{
			Id: m.ID, Type: m.Type, TimeMs: m.Time, From: m.From, Dest: m.Dest, Data: m.Data, Sign: m.Sign,
		},
	}
	ctx, cancel := context.WithTimeout(c.ctx, s.opts.RPCTimeout)
	start := time.Now()
	resp, err := s.peers.Router.Route(ctx, req)
	cancel()
	if err != nil {
		s.metrics.route.WithLabelValues("error").Observe(time.Since(start).Seconds())
		s.metrics.rpcErrors.WithLabelValues("router.Route").Inc()
		if c.ctx.Err() != nil {
			return // the gateway is closing this connection; the client resends after reconnecting
		}
		s.log.WarnContext(ctx, "route failed", c.attrs("id", m.ID, "err", err)...)
		c.replyError(routeError(err).For(m.ID, m.Type))
		return
	}
	s.metrics.route.WithLabelValues(outcomeLabel(resp.GetOutcome())).Observe(time.Since(start).Seconds())
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
