// Package natsx connects to NATS and names the subjects the services share.
// Every subject starts with a configurable prefix so environments and tests
// sharing one NATS server never see each other's traffic.
package natsx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
)

// Option adjusts the connection Connect opens.
type Option func(*options)

type options struct {
	metrics *Metrics
}

// WithMetrics counts the connection's errors and reconnects on m.
func WithMetrics(m *Metrics) Option { return func(o *options) { o.metrics = m } }

// Connect opens a connection that reconnects forever, logging state changes.
func Connect(ctx context.Context, url, name string, logger *slog.Logger, opts ...Option) (*nats.Conn, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	m := o.metrics
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			// A nil error is our own Close; only a lost connection is news.
			if err != nil {
				m.count(kindDisconnect)
				logger.WarnContext(ctx, "nats disconnected", "err", err)
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			// Asynchronous errors, such as a slow consumer dropping
			// messages, would otherwise go unseen.
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			m.count(kindAsync)
			logger.ErrorContext(ctx, "nats async error", "subject", subject, "err", err)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			m.count(kindReconnect)
			logger.InfoContext(ctx, "nats reconnected", "url", c.ConnectedUrlRedacted())
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("nats connect %s: %w", url, err)
	}
	return nc, nil
}

// Subjects builds every NATS subject from one prefix.
type Subjects struct {
	// Prefix starts every subject; default "bachata".
	Prefix string
}

func (s Subjects) p() string {
	if s.Prefix == "" {
		return "bachata"
	}
	return s.Prefix
}

// GatewayDeliveries is where delivery publishes frames for the devices one
// gateway holds (payload eventsv1.DeliveryBatch).
func (s Subjects) GatewayDeliveries(gatewayID string) string {
	return s.p() + ".gateway." + gatewayID + ".deliver"
}

// GatewayKick is where the admin API asks one gateway to close a user's
// connections (payload eventsv1.Kick).
func (s Subjects) GatewayKick(gatewayID string) string {
	return s.p() + ".gateway." + gatewayID + ".kick"
}

// PresenceChanged is where presence publishes a user's status changes
// (payload eventsv1.PresenceChanged); userToken is UserToken(user).
func (s Subjects) PresenceChanged(userToken string) string {
	return s.p() + ".presence.changed." + userToken
}

// UserToken is the subject token for a user's presence events: lowercase
// hex of the first 16 bytes of SHA-256 of the entity ID, so
// "@alice@localhost" becomes a 32-character token. Entity IDs contain
// characters that subjects cannot ('.', and others the protocol may
// allow); presence publishes and gateways subscribe under the same token.
// 128 bits make collisions a non-issue, and the payload names the user
// anyway.
func UserToken(user string) string {
	sum := sha256.Sum256([]byte(user))
	return hex.EncodeToString(sum[:16])
}

// PresenceChangedAll matches every PresenceChanged subject.
func (s Subjects) PresenceChangedAll() string { return s.p() + ".presence.changed.*" }

// GatewayDown is where presence announces a gateway whose lease expired
// (payload eventsv1.GatewayDown).
func (s Subjects) GatewayDown() string { return s.p() + ".gateway.down" }

// App is the subject an application backend listens on for customized
// content; suffix comes from the protocol package and is already validated.
func (s Subjects) App(suffix string) string { return s.p() + ".app." + suffix }

// MessageUndelivered is where delivery reports a message no device of its
// recipient acked within the configured delay (payload
// eventsv1.MessageUndelivered).
func (s Subjects) MessageUndelivered() string { return s.p() + ".delivery.undelivered" }

// MessageDelivered is where delivery reports that a message reported
// undelivered was acked at last (payload eventsv1.MessageDelivered).
func (s Subjects) MessageDelivered() string { return s.p() + ".delivery.delivered" }

// DeadLetter is where delivery reports every entry it moved to a
// dead-letter list (payload eventsv1.DeadLetter).
func (s Subjects) DeadLetter() string { return s.p() + ".delivery.deadletter" }
