package dispatch

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/bachata-chat/bachata/libs/natsx"
	eventsv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/events/v1"
	"github.com/bachata-chat/bachata/services/delivery/internal/queue"
)

// Publisher sends what the queues release over NATS: deliveries to the one
// gateway holding each device, dead letters and post-process reports as
// events. A publish that fails loses nothing: deliveries stay in flight in
// Redis and go out again on the visibility timeout or the next attach.
type Publisher struct {
	nats     *nats.Conn
	subjects natsx.Subjects
	logger   *slog.Logger
	metrics  *metrics
}

// Publish implements shard.Publisher.
func (p *Publisher) Publish(ctx context.Context, out queue.Pushed) {
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
	var order []string
	for _, d := range ds {
		if _, ok := perGateway[d.GatewayID]; !ok {
			order = append(order, d.GatewayID)
		}
		perGateway[d.GatewayID] = append(perGateway[d.GatewayID], d.Event())
		if d.Attempt > 1 {
			p.metrics.redelivered.Inc()
		}
	}
	limit := int(p.nats.MaxPayload())
	for _, gw := range order {
		subject := p.subjects.GatewayDeliveries(gw)
		for _, b := range splitBatches(perGateway[gw], limit) {
			if p.send(ctx, subject, b) {
				p.metrics.pushed.Add(float64(len(b.GetDeliveries())))
			}
		}
	}
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
		p.logger.WarnContext(ctx, "entry moved to dead letters", "user", d.Device.GetUser(), "device", d.Device.GetDevice(),
			"reason", d.Reason.String(), "attempts", d.Attempts, "id", d.MessageID)
		p.send(ctx, p.subjects.DeadLetter(), d.Event())
	}
}

func (p *Publisher) delivered(ctx context.Context, ev *eventsv1.MessageDelivered) {
	if p.send(ctx, p.subjects.MessageDelivered(), ev) {
		p.metrics.delivered.Inc()
	}
}

func (p *Publisher) send(ctx context.Context, subject string, m proto.Message) bool {
	payload, err := proto.Marshal(m)
	if err != nil {
		p.logger.ErrorContext(ctx, "encode event", "subject", subject, "err", err)
		return false
	}
	if err := p.nats.Publish(subject, payload); err != nil {
		p.metrics.publishErrors.Inc()
		p.logger.WarnContext(ctx, "publish", "subject", subject, "err", err)
		return false
	}
	return true
}
