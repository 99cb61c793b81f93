package routing

import (
	"encoding/json"
	"fmt"

	"github.com/bachata-chat/bachata/libs/entity"
	"github.com/bachata-chat/bachata/libs/protocol"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	routerv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/router/v1"
	"github.com/bachata-chat/bachata/services/router/chain"
)

// requestOf checks what the gateway vouches for — there is a message, and a
// sender device is a real user and device — and builds the chain's view of
// the request. A failure is ErrBadRequest: the gateway's bug, not the
// client's.
func requestOf(req *routerv1.RouteRequest) (*chain.Request, error) {
	m := req.GetMessage()
	if m == nil {
		return nil, fmt.Errorf("check request: %w: no message", ErrBadRequest)
	}
	s := req.GetSender()
	dev := s.GetDevice()
	// An empty device means the system (the proto's contract), whether the
	// gateway left the field out or sent it empty.
	if dev.GetUser() == "" && dev.GetDevice() == "" {
		return &chain.Request{Message: m}, nil
	}
	id, err := entity.Parse(dev.GetUser())
	if err != nil || id.Kind != entity.KindUser {
		return nil, fmt.Errorf("check request: %w: sender user %q is not a user ID", ErrBadRequest, dev.GetUser())
	}
	if dev.GetDevice() == "" {
		return nil, fmt.Errorf("check request: %w: sender %s has no device", ErrBadRequest, dev.GetUser())
	}
	return &chain.Request{
		Message:      m,
		Sender:       dev,
		SessionKey:   s.GetSessionKey(),
		GatewayID:    s.GetGatewayId(),
		ConnectionID: s.GetConnectionId(),
	}, nil
}

// checkMessage applies the rules every data message follows whatever its
// route. The gateway's decoder already enforces them on client frames; the
// router checks again because it is the authority for every caller,
// including the admin API, and because delivery copies data verbatim into
// the frames recipients receive.
func checkMessage(m *commonv1.Message) *protocol.Error {
	switch {
	case m.GetId() == "":
		return protocol.NewError(protocol.CodeMissingID)
	case len(m.GetId()) > protocol.MaxIDLength:
		return protocol.Errorf(protocol.CodeInvalidID, "%d bytes", len(m.GetId()))
	case m.GetType() == "" || len(m.GetType()) > protocol.MaxTypeLength:
		return protocol.Errorf(protocol.CodeInvalidType, "want 1 to %d bytes", protocol.MaxTypeLength)
	case len(m.GetData()) > 0 && !json.Valid(m.GetData()):
		return protocol.Errorf(protocol.CodeInvalidField, "data is not valid JSON")
	}
	return nil
}
