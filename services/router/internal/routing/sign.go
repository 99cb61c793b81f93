package routing

import (
	"github.com/bachata-chat/bachata/libs/protocol"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
)

// checkSign verifies m's "sign" with the connection's session key when one
// is present, and requires one when the router is configured to. Both are
// the sender's mistakes: 4200 sign required, 4201 sign invalid (including a
// connection without a session key, which can never verify).
func (s *Service) checkSign(sessionKey string, m *commonv1.Message) *protocol.Error {
	if m.GetSign() == "" && !s.requireSign {
		return nil
	}
	if err := protocol.Verify(sessionKey, dataMessage(m)); err != nil {
		return protocol.AsError(err)
	}
	return nil
}

// dataMessage is m as libs/protocol sees a client frame, so the signature is
// computed over exactly the canonical form the client signed.
func dataMessage(m *commonv1.Message) *protocol.DataMessage {
	return &protocol.DataMessage{
		ID:   m.GetId(),
		Type: m.GetType(),
		Time: m.GetTimeMs(),
		From: m.GetFrom(),
		Dest: m.GetDest(),
		Data: m.GetData(),
		Sign: m.GetSign(),
	}
}
