package ws

import (
	"context"
	"fmt"

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
	for _, d := range batch.GetDeliveries() {
		s.deliver(d)
	}
}

func (s *Server) deliver(d *eventsv1.Delivery) {
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
			s.log.ErrorContext(c.ctx, "delivery not encodable", c.attrs("id", item.Message.GetId(), "err", err)...)
			return
		}
		c.send(frame, kindData, nil)
	case *eventsv1.Delivery_Receipt:
		t := protocol.TransportType(item.Receipt.GetType())
		id := item.Receipt.GetMessageId()
		if t != protocol.TransportReceived && t != protocol.TransportDelivered || id == "" {
			s.metrics.dropped.WithLabelValues("bad_receipt").Inc()
			s.log.ErrorContext(c.ctx, "delivery receipt not writable", c.attrs("receipt_type", int(t), "id", id)...)
			return
		}
		// The receipt is confirmed once written, so delivery stops sending
		// it; if the socket dies first it stays in flight and comes again.
		c.send(transportFrame(t, id), transportKind(t), func() { s.confirmReceipt(c.device, id) })
	default:
		s.metrics.dropped.WithLabelValues("empty").Inc()
	}
}

// confirmReceipt tells delivery a receipt reached the device. It runs on
// the connection's writer goroutine: it waits for a free slot, which
// slows that one connection when delivery is slow instead of piling up
// goroutines, then calls Ack in the background.
func (s *Server) confirmReceipt(device *commonv1.DeviceRef, id string) {
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
		ctx, cancel := s.rpcContext()
		defer cancel()
		if err := s.ack(ctx, &deliveryv1.AckRequest{Device: device, ReceiptIds: []string{id}}); err != nil {
			s.log.WarnContext(ctx, "receipt confirmation failed", "user", device.GetUser(), "device", device.GetDevice(), "id", id, "err", err)
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
