package chain

import (
	"context"

	"github.com/bachata-chat/bachata/libs/protocol"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
)

// Handshake answers the DIMP handshake on the sending connection. The
// connection's session key is settled before any message: presence issues
// it, or resumes the one the client presented when connecting, and the
// ready frame carries it. So the handshake only confirms it:
//
//   - {"title":"Hello world!","session":"<the connection's key>"} is
//     accepted: {"title":"DIM!","session":"<key>"};
//   - a hello without a session, or with another one (a key from an older
//     connection), is asked to handshake again with the current key:
//     {"title":"DIM?","session":"<the connection's key>"}.
//
// The answer is a "handshake" data message with the hello's id, sent to the
// sending connection only (OUTCOME_REPLIED); nothing is queued. Data that is
// not such an object, or a title other than "Hello world!" (DIM? and DIM!
// are the server's), is 4210 invalid handshake, as is a handshake without a
// connection (a system message).
//
// The route is SignOptional for handshakes: a client that holds a stale key
// uses the handshake to learn the current one, so it cannot sign with it,
// and the answer reveals nothing the connection did not already get in its
// ready frame.
type Handshake struct{}

// NewHandshake returns the handshake route.
func NewHandshake() *Handshake { return &Handshake{} }

// Name implements Route.
func (*Handshake) Name() string { return protocol.TypeHandshake }

// SignOptional implements SignOptional.
func (*Handshake) SignOptional(m *commonv1.Message) bool {
	return m.GetType() == protocol.TypeHandshake
}

// Process implements Route.
func (*Handshake) Process(_ context.Context, req *Request) (Decision, error) {
	m := req.Message
	if m.GetType() != protocol.TypeHandshake {
		return Pass(), nil
	}
	if req.System() || req.SessionKey == "" {
		return Reject(protocol.Errorf(protocol.CodeInvalidHandshake, "a handshake needs a client connection")), nil
	}
	hello, err := protocol.ParseHandshake(m.GetData())
	if err != nil {
		return Reject(protocol.AsError(err)), nil
	}
	if hello.Title != protocol.TitleHello {
		return Reject(protocol.Errorf(protocol.CodeInvalidHandshake, "title %q: a client sends %q", hello.Title, protocol.TitleHello)), nil
	}
	answer := protocol.HandshakeAsk(req.SessionKey)
	if hello.Session == req.SessionKey {
		answer = protocol.HandshakeAccepted(req.SessionKey)
	}
	return Reply(&commonv1.Message{
		Id:     m.GetId(),
		Type:   protocol.TypeHandshake,
		TimeMs: m.GetTimeMs(),
		Dest:   req.Sender.GetUser(),
		Data:   protocol.AppendHandshake(nil, answer),
	}), nil
}
