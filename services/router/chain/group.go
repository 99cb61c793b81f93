package chain

import (
	"context"
	"fmt"

	"google.golang.org/grpc"

	"github.com/bachata-chat/bachata/libs/entity"
	"github.com/bachata-chat/bachata/libs/protocol"
	deliveryv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/delivery/v1"
)

// MemberChecker tells whether a room exists and a user is in it;
// deliveryv1.GroupServiceClient satisfies it.
type MemberChecker interface {
	CheckMember(ctx context.Context, in *deliveryv1.CheckMemberRequest, opts ...grpc.CallOption) (*deliveryv1.CheckMemberResponse, error)
}

// Group routes "group" messages to a room !<room>@<server> on this server:
// every member's devices get it but the sending device; the sender's own
// other devices get it as a copy. The delivery service reads the members
// and fans out in batches, so a room's size costs a bounded number of
// round trips per thousand members.
//
// The sender must be a member: otherwise 4102 not a member; a room without
// members does not exist: 4101. The 100 comes once every member's devices
// have it queued; the 300 once, on the first ack from a device of any
// member other than the sender. A system message (no sender) reaches every
// member and asks for no 300.
type Group struct {
	server  string
	members MemberChecker
}

// NewGroup returns the group route for the suite whose entity IDs end in
// serverName, checking membership through members.
func NewGroup(serverName string, members MemberChecker) *Group {
	return &Group{server: serverName, members: members}
}

// Name implements Route.
func (*Group) Name() string { return protocol.TypeGroup }

// Process implements Route.
func (g *Group) Process(ctx context.Context, req *Request) (Decision, error) {
	m := req.Message
	if m.GetType() != protocol.TypeGroup {
		return Pass(), nil
	}
	room, err := entity.Parse(m.GetDest())
	if err != nil || room.Kind != entity.KindRoom {
		return Reject(protocol.Errorf(protocol.CodeInvalidDest, "%q is not a room ID !<room>@<server>", m.GetDest())), nil
	}
	if room.Server != g.server {
		return Reject(protocol.Errorf(protocol.CodeDestNotFound, "%s is not on this server (%s)", room, g.server)), nil
	}
	check, err := g.members.CheckMember(ctx, &deliveryv1.CheckMemberRequest{Room: room.String(), User: req.Sender.GetUser()})
	if err != nil {
		return Decision{}, fmt.Errorf("group %s: check membership: %w: %w", room, ErrUnavailable, err)
	}
	switch {
	case !check.GetRoomExists():
		return Reject(protocol.Errorf(protocol.CodeDestNotFound, "room %s has no members", room)), nil
	case !req.System() && !check.GetMember():
		return Reject(protocol.Errorf(protocol.CodeNotMember, "%s is not in %s", req.Sender.GetUser(), room)), nil
	}
	return Deliver(Delivery{
		Recipients: []*deliveryv1.Recipient{{Room: room.String(), ExcludeDevice: req.Sender.GetDevice()}},
		Receipt:    !req.System(),
	}), nil
}
