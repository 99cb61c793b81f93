package chain

import (
	"context"

	"github.com/bachata-chat/bachata/libs/entity"
	"github.com/bachata-chat/bachata/libs/protocol"
	deliveryv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/delivery/v1"
)

// Direct routes "direct" messages to one user on this server. dest is the
// user's entity ID (@bob@<server>) or bare username (bob). The recipients:
//
//   - the dest user, every device, with a receipt: the sender gets one 300
//     when the first of that user's devices acks;
//   - the sender's own other devices as a copy (not the sending device), so
//     a conversation shows on every device; copies never count for the 300.
//
// A user writing to themself is one recipient, not a copy: their other
// devices receive it and the first ack is the 300, exactly as with any
// other recipient. Listing the same user twice (recipient and copy) would
// queue the message twice on each device. A system message (no sending
// device) goes to the dest user alone, without a receipt, since nobody
// would receive the 300.
//
// A dest on another server is refused with 4101 destination not found:
// there is no federation, and queuing for a user this suite does not own
// would accept a message that can never be delivered.
type Direct struct {
	server string
}

// NewDirect returns the direct route for the suite whose entity IDs end in
// serverName, which resolves bare usernames and tells local users apart.
func NewDirect(serverName string) *Direct { return &Direct{server: serverName} }

// Name implements Route.
func (*Direct) Name() string { return protocol.TypeDirect }

// Process implements Route.
func (d *Direct) Process(_ context.Context, req *Request) (Decision, error) {
	m := req.Message
	if m.GetType() != protocol.TypeDirect {
		return Pass(), nil
	}
	to, err := entity.ResolveUser(m.GetDest(), d.server)
	if err != nil {
		return Reject(protocol.Errorf(protocol.CodeInvalidDest, "%q is not a user: %w", m.GetDest(), err)), nil
	}
	if to.Server != d.server {
		return Reject(protocol.Errorf(protocol.CodeDestNotFound, "%s is not on this server (%s)", to, d.server)), nil
	}
	user := to.String()
	if req.System() {
		return Deliver(Delivery{Recipients: []*deliveryv1.Recipient{{User: user}}}), nil
	}
	self, device := req.Sender.GetUser(), req.Sender.GetDevice()
	if user == self {
		return Deliver(Delivery{
			Recipients: []*deliveryv1.Recipient{{User: user, ExcludeDevice: device}},
			Receipt:    true,
		}), nil
	}
	return Deliver(Delivery{
		Recipients: []*deliveryv1.Recipient{
			{User: user},
			{User: self, ExcludeDevice: device, Copy: true},
		},
		Receipt: true,
	}), nil
}
