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

// deliveries publishes one batch per gateway, keeping their order.
func (p *Publisher) deliveries(ctx context.Context, ds []queue.Delivery) {
	if len(ds) == 0 {
		return
	}
	batches := make(map[string]*eventsv1.DeliveryBatch)
	var order []string
	for _, d := range ds {
		b, ok := batches[d.GatewayID]
		if !ok {
			b = &eventsv1.DeliveryBatch{}
			batches[d.GatewayID] = b
			order = append(order, d.GatewayID)
		}
		b.Deliveries = append(b.Deliveries, d.Event())
		if d.Attempt > 1 {
			p.metrics.redelivered.Inc()
		}
	}
	for _, gw := range order {
		if p.send(ctx, p.subjects.GatewayDeliveries(gw), batches[gw]) {
			p.metrics.pushed.Add(float64(len(batches[gw].GetDeliveries())))
		}
	}
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
