package ws

import (
	"errors"

	"github.com/bachata-chat/bachata/libs/protocol"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
)

// errIncomplete is returned for a message from a peer service that lacks
// an id or a type, which no client could make sense of.
var errIncomplete = errors.New("message without id or type")

// decode decodes a client frame with the gateway's size limit; every
// format check and errCode is the protocol library's.
func decode(payload []byte, maxFrame int) (protocol.Frame, error) {
	return protocol.Decoder{MaxFrameSize: maxFrame}.Decode(payload)
}

// transportFrame encodes a transport message; data empty leaves it out.
func transportFrame(t protocol.TransportType, data string) []byte {
	return protocol.AppendTransport(make([]byte, 0, 24+len(data)), &protocol.TransportMessage{Type: t, Data: data})
}

// messageFrame encodes a data message from a peer service as the exact
// client frame {"id","type","time","from","dest","data","sign"?}. Peer
// services are trusted to carry data as the valid JSON Decode produced.
func messageFrame(m *commonv1.Message) ([]byte, error) {
	if m.GetId() == "" || m.GetType() == "" {
		return nil, errIncomplete
	}
	dm := protocol.DataMessage{
		ID: m.GetId(), Type: m.GetType(), Time: m.GetTimeMs(), From: m.GetFrom(),
		Dest: m.GetDest(), Data: m.GetData(), Sign: m.GetSign(),
	}
	n := 64 + len(dm.ID) + len(dm.Type) + len(dm.From) + len(dm.Dest) + len(dm.Data) + len(dm.Sign)
	return protocol.AppendData(make([]byte, 0, n), &dm), nil
}
