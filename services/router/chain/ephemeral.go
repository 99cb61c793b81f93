package chain

import (
	"context"
	"errors"
	"slices"

	"github.com/bachata-chat/bachata/libs/entity"
	"github.com/bachata-chat/bachata/libs/protocol"
	deliveryv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/delivery/v1"
)

// DefaultEphemeralTypes are the types the ephemeral route owns when none
// are configured.
var DefaultEphemeralTypes = []string{"typing"}

// Ephemeral sends messages of its types (by default "typing") to the dest
// user's devices that are online now, and to nobody else: they are never
// queued, never sent again, and get no 100 and no 300 (OUTCOME_SENT). A
// device that is offline, or reconnects a moment later, simply never sees
// them, which is right for signals that are stale within seconds.
//
// dest is resolved as for "direct": an entity ID on this server or a bare
// username. The sending device never gets its own message; the sender's
// other devices do not either, since a typing signal is for the peer.
type Ephemeral struct {
	server string
	types  []string
}

// ErrNoTypes means an ephemeral route was configured without types.
var ErrNoTypes = errors.New("chain: ephemeral route needs at least one type")

// NewEphemeral returns the ephemeral route for serverName owning types.
func NewEphemeral(serverName string, types ...string) (*Ephemeral, error) {
	if len(types) == 0 {
		return nil, ErrNoTypes
	}
	return &Ephemeral{server: serverName, types: slices.Clone(types)}, nil
}

// Name implements Route.
func (*Ephemeral) Name() string { return "ephemeral" }

// Types lists the types the route owns.
func (e *Ephemeral) Types() []string { return slices.Clone(e.types) }

// Process implements Route.
func (e *Ephemeral) Process(_ context.Context, req *Request) (Decision, error) {
	m := req.Message
	if !slices.Contains(e.types, m.GetType()) {
		return Pass(), nil
	}
	to, err := entity.ResolveUser(m.GetDest(), e.server)
	if err != nil {
		return Reject(protocol.Errorf(protocol.CodeInvalidDest, "%q is not a user: %w", m.GetDest(), err)), nil
	}
	if to.Server != e.server {
		return Reject(protocol.Errorf(protocol.CodeDestNotFound, "%s is not on this server (%s)", to, e.server)), nil
	}
	r := &deliveryv1.Recipient{User: to.String()}
	if r.GetUser() == req.Sender.GetUser() {
		r.ExcludeDevice = req.Sender.GetDevice()
	}
	return Send(Delivery{Recipients: []*deliveryv1.Recipient{r}}), nil
}
