package protocol

import "encoding/json"

// Limits of the decoder.
const (
	// DefaultMaxFrameSize is the largest frame accepted by default (64 KiB).
	// The gateway enforces it on the WebSocket and closes with status 1009;
	// Decode enforces it again (4012) so no caller handles unbounded input.
	DefaultMaxFrameSize = 64 << 10
	// DefaultMaxDepth is how deeply objects and arrays may nest, counting the
	// frame's own object as 1; deeper frames get 4011.
	DefaultMaxDepth = 32
	// MaxDepthLimit is the largest depth a Decoder can be configured with;
	// the scanner keeps its container stack in a fixed array of this size.
	MaxDepthLimit = 1024
	// MaxIDLength caps a message id in bytes (after unescaping): ids are
	// stored in queues and dedupe keys.
	MaxIDLength = 128
	// MaxTypeLength caps a data message type in bytes: types name routes and
	// label metrics.
	MaxTypeLength = 128
)

// Built-in data message types.
const (
	// TypeDirect is a message to one user: dest is that user.
	TypeDirect = "direct"
	// TypeGroup is a message to a room: dest is !room@server.
	TypeGroup = "group"
	// TypeApp is DIMP customized content for an application backend.
	TypeApp = "app"
	// TypeHandshake is the DIMP handshake command.
	TypeHandshake = "handshake"
	// TypePresence is a presence change sent by the server to subscribers.
	TypePresence = "presence"
	// TypePresenceSubscribe subscribes to the presence of data.users.
	TypePresenceSubscribe = "presence.subscribe"
	// TypePresenceUnsubscribe ends presence subscriptions for data.users.
	TypePresenceUnsubscribe = "presence.unsubscribe"
	// TypeTyping is the default ephemeral type: online devices only, no
	// receipts.
	TypeTyping = "typing"
	// ErrorSuffix ends the type of an error reply: "direct" → "direct:error".
	ErrorSuffix = ":error"
	// TypeError is the type of an error reply to a frame whose string type
	// could not be read (not JSON, a transport message, a bad type).
	TypeError = "error"
)

// Frame is a decoded frame: *DataMessage or *TransportMessage. The interface
// is closed so a type switch over the two is exhaustive.
type Frame interface {
	isFrame()
}

// DataMessage is a data message: user data routed by its string type.
type DataMessage struct {
	// ID is unique per sender, chosen by the client; required.
	ID string
	// Type selects the route; required, not empty.
	Type string
	// Time is Unix milliseconds. The router overwrites what a client sent;
	// 0 means absent.
	Time int64
	// From is the sender's entity ID. The router overwrites what a client
	// sent; empty means the system.
	From string
	// Dest is the destination: an entity ID or a bare username; may be
	// empty at decode time.
	Dest string
	// Data is the compact JSON of "data" exactly as sent (whitespace
	// removed, nothing re-escaped or reordered); nil when absent. Encoders
	// copy it verbatim, so it must be valid JSON.
	Data json.RawMessage
	// Sign is the optional HMAC-SHA256 signature in hex.
	Sign string
}

func (*DataMessage) isFrame() {}

// TransportType is the integer type of a transport message.
type TransportType int

// The transport types of the seed's table.
const (
	// TransportReceived (100, server → sender): the message is durably
	// queued for every recipient device.
	TransportReceived TransportType = 100
	// TransportAck (200, receiver → server): the device got the message.
	TransportAck TransportType = 200
	// TransportDelivered (300, server → sender): the recipient got it.
	TransportDelivered TransportType = 300
	// TransportReady (1000, server → client): the connection is ready;
	// data is the session key.
	TransportReady TransportType = 1000
	// TransportPing (1001, either way): answer with TransportPong.
	TransportPing TransportType = 1001
	// TransportPong (1002, either way): the answer to TransportPing.
	TransportPong TransportType = 1002
)

// Known reports whether t is in the transport table.
func (t TransportType) Known() bool {
	switch t {
	case TransportReceived, TransportAck, TransportDelivered,
		TransportReady, TransportPing, TransportPong:
		return true
	}
	return false
}

// FromClient reports whether a client may send t: only acks, pings and
// pongs; 100, 300 and 1000 are the server's.
func (t TransportType) FromClient() bool {
	return t == TransportAck || t == TransportPing || t == TransportPong
}

// CarriesID reports whether t's data is a message id (100, 200, 300), which
// Decode then requires.
func (t TransportType) CarriesID() bool {
	return t == TransportReceived || t == TransportAck || t == TransportDelivered
}

// TransportMessage is a transport message: receipts, ready, ping and pong.
type TransportMessage struct {
	// Type is the transport type.
	Type TransportType
	// Data is a message id (100, 200, 300), the session key (1000), or
	// empty (1001, 1002).
	Data string
	// Sign is the optional HMAC-SHA256 signature in hex.
	Sign string
}

func (*TransportMessage) isFrame() {}

// CheckClientFrame reports, as a 4003 *Error, a transport message that only
// the server may send (100, 300, 1000). Decode accepts every type of the
// table because the same decoder serves clients and tests reading the
// server's frames; the gateway calls this on what clients send.
func CheckClientFrame(f Frame) error {
	t, ok := f.(*TransportMessage)
	if !ok || t.Type.FromClient() {
		return nil
	}
	return Errorf(CodeTypeNotAllowed, "transport type %d is sent by the server only", t.Type)
}
