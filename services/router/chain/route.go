package chain

import (
	"context"

	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
)

// Route decides what happens to the data messages of the types it owns.
type Route interface {
	// Name identifies the route in the chain, in RouteResponse.route, in logs
	// and in metric labels. It is unique in a chain and never changes.
	Name() string
	// Process looks at one message and returns Pass to hand it to the next
	// route, or a Decision that ends the chain. It must be safe for
	// concurrent use and must not modify req. An error means the route could
	// not decide; the message is then not accepted.
	Process(ctx context.Context, req *Request) (Decision, error)
}

// PostProcessor is an optional capability of a Route, checked at use: the
// chain calls PostProcess after the delivery service durably queued a
// message the route decided to Deliver, the seeds' post_process. It is not
// called when nothing was queued (a Reply, a Reject, a failed enqueue, or a
// resend delivery already had), so it runs at most once per accepted
// message. It runs before the sender is told the message was accepted, so it
// must be quick; longer work belongs to goroutines the route owns. Its error
// is logged and counted but does not change the outcome: the message is
// already accepted.
type PostProcessor interface {
	PostProcess(ctx context.Context, req *Request, q Queued) error
}

// SignOptional is an optional capability of a Route, checked at use: a
// message it reports true for is routed without its "sign" being required
// or verified. The handshake route uses it because a handshake is how a
// client with a stale session key learns the current one, so it cannot be
// signed with it. Only routes whose answer goes to the sending connection
// alone, with no other effect, should claim it.
type SignOptional interface {
	SignOptional(m *commonv1.Message) bool
}

// Request is one data message on its way through the chain.
type Request struct {
	// Message is the validated message. Its From and TimeMs are already
	// stamped by the router; a client's own values never reach a route.
	Message *commonv1.Message
	// Sender is the authenticated sending device; nil for a message created
	// by the system (the admin API), which has no device, session or
	// connection.
	Sender *commonv1.DeviceRef
	// SessionKey is the sending connection's session key; empty for a
	// system message.
	SessionKey string
	// GatewayID and ConnectionID name the sending connection; empty for a
	// system message.
	GatewayID, ConnectionID string
}

// System reports whether the message was created by the system rather than
// sent by a device.
func (r *Request) System() bool { return r.Sender == nil }

// Queued is what the delivery service reported for a Deliver decision.
type Queued struct {
	// Delivery is what the route decided.
	Delivery Delivery
	// Devices is how many device queues received the message.
	Devices int
}
