package lease

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/bachata-chat/bachata/libs/natsx"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	eventsv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/events/v1"
)

// flushTimeout bounds the wait for NATS to confirm a GatewayDown.
const flushTimeout = 5 * time.Second

// publishPresence announces a user's new status. It does not fail its
// caller: Redis already has the new state, and a subscriber that misses an
// event (NATS down) gets the state from Query when it resubscribes.
func (t *Tracker) publishPresence(ctx context.Context, user string, online bool, lastSeenMs int64) {
	kind := kindOffline
	if online {
		kind = kindOnline
	}
	payload, err := proto.Marshal(&eventsv1.PresenceChanged{User: user, Online: online, LastSeenMs: lastSeenMs})
	if err == nil {
		msg := &nats.Msg{Subject: t.subjects.PresenceChanged(natsx.UserToken(user)), Data: payload}
		natsx.InjectTrace(ctx, msg) // the connect or sweep that changed it, when traced
		err = t.nc.PublishMsg(msg)
	}
	if err != nil {
		t.metrics.publishErrors.WithLabelValues(kind).Inc()
		t.logger.WarnContext(ctx, "publish presence change", "user", user, "online", online, "err", err)
		return
	}
	t.metrics.events.WithLabelValues(kind).Inc()
}

// publishGatewayDown announces a dead gateway and the connections it held,
// in as many messages as the server's payload limit needs, and waits for
// the server to take them: the sweep is finished only after that, and is
// repeated (by a later pass) if it fails.
func (t *Tracker) publishGatewayDown(ctx context.Context, gateway string, conns []Connection) error {
	// Leave room for the gateway ID and framing; per-connection sizes are
	// estimated from their fields, which is exact enough to stay below.
	limit := int(t.nc.MaxPayload()) / 2
	ev := &eventsv1.GatewayDown{GatewayId: gateway}
	size := 0
	send := func() error {
		payload, err := proto.Marshal(ev)
		if err == nil {
			err = t.nc.Publish(t.subjects.GatewayDown(), payload)
		}
		if err != nil {
			t.metrics.publishErrors.WithLabelValues(kindGatewayDown).Inc()
			return fmt.Errorf("publish gateway down: %w", err)
		}
		t.metrics.events.WithLabelValues(kindGatewayDown).Inc()
		return nil
	}
	for _, c := range conns {
		n := len(c.User) + len(c.Device) + len(c.ID) + 16
		if size+n > limit && len(ev.Connections) > 0 {
			if err := send(); err != nil {
				return err
			}
			ev = &eventsv1.GatewayDown{GatewayId: gateway}
			size = 0
		}
		ev.Connections = append(ev.Connections, &eventsv1.DeviceConnection{
			Device:       &commonv1.DeviceRef{User: c.User, Device: c.Device},
			ConnectionId: c.ID,
		})
		size += n
	}
	if err := send(); err != nil {
		return err
	}
	fctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	if err := t.nc.FlushWithContext(fctx); err != nil {
		t.metrics.publishErrors.WithLabelValues(kindGatewayDown).Inc()
		return fmt.Errorf("flush gateway down: %w", err)
	}
	return nil
}
