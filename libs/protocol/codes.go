package protocol

import "strconv"

// Code is an errCode of a client-facing ":error" reply. This file is the one
// table of codes for the whole suite; docs/protocol.md lists the same table
// for client developers (a test keeps the two in step).
//
// A code never changes meaning once released: clients switch on it. New
// codes take a free number in their area's range:
//
//	4000-4099  frame format (decoding, gateway)
//	4100-4199  routing (router, route chain, app backends)
//	4200-4289  auth and session (signatures, handshake)
//	4290-4299  limits (rate limiting)
//	4300-4999  reserved for future client-error areas
//	5000-5099  server side (the client did nothing wrong)
//	5100-5999  reserved for future server-error areas
//	10000-19999 custom routes and application backends (never used by the suite)
type Code int

// Frame format errors, 4000-4099: the frame could not be decoded. The
// connection stays open.
const (
	// CodeInvalidJSON means the frame is not valid JSON (including an empty
	// frame or trailing data after the value).
	CodeInvalidJSON Code = 4000
	// CodeNotObject means the frame is valid JSON but not an object.
	CodeNotObject Code = 4001
	// CodeInvalidType means "type" is missing, null, an empty or over-long
	// string, a string with control characters, or neither a string nor an
	// integer (100.5, 1e2 and 100.0 are not integers).
	CodeInvalidType Code = 4002
	// CodeTypeNotAllowed means an integer type is outside the transport table, or
	// a server-only transport type (100, 300, 1000) sent by a client.
	CodeTypeNotAllowed Code = 4003
	// CodeMissingID means a data message has no "id" or an empty one, or
	// a 100/200/300 transport message without the message id in "data".
	CodeMissingID Code = 4004
	// CodeInvalidID means "id" is not a string, is longer than MaxIDLength
	// bytes or holds a control character (also a transport message id in
	// "data").
	CodeInvalidID Code = 4005
	// CodeInvalidDest means "dest" is neither an entity ID nor a bare username,
	// or a route needs a dest of another kind, or none was given.
	CodeInvalidDest Code = 4006
	// CodeInvalidField means a known field has the wrong JSON type ("time" not
	// an integer, "from"/"dest"/"sign" not a string, a transport "data" not
	// a string).
	CodeInvalidField Code = 4007
	// CodeDuplicateKey means a top-level key occurs twice; rejected because
	// parsers disagree on which one wins.
	CodeDuplicateKey Code = 4008
	// CodeBinaryFrame means a binary WebSocket frame arrived; only text frames carry
	// the protocol. Sent by the gateway, never by Decode.
	CodeBinaryFrame Code = 4009
	// CodeInvalidUTF8 means the frame is not valid UTF-8, or a string field
	// escapes a lone UTF-16 surrogate.
	CodeInvalidUTF8 Code = 4010
	// CodeTooDeep means objects and arrays nest deeper than the limit
	// (DefaultMaxDepth).
	CodeTooDeep Code = 4011
	// CodeFrameTooLarge means the frame is larger than the limit. The gateway
	// closes such a connection with WebSocket status 1009 instead of
	// replying; the code exists for callers of Decode with other limits.
	CodeFrameTooLarge Code = 4012
)

// Routing errors, 4100-4199: the frame was well formed but could not be
// routed.
const (
	// CodeUnknownType means no route handles the data message's type (the seed's
	// "type isn't implemented in the server").
	CodeUnknownType Code = 4100
	// CodeDestNotFound means the destination does not exist (unknown room).
	CodeDestNotFound Code = 4101
	// CodeNotMember means the sender is not a member of the destination room.
	CodeNotMember Code = 4102
	// CodeForbidden means the sender may not send this message.
	CodeForbidden Code = 4103
	// CodeAppNoResponder means no application backend listens for this
	// app/mod/act; nothing was processed, so a later retry is safe.
	CodeAppNoResponder Code = 4110
	// CodeAppTimeout means the application backend did not answer in time; it
	// may or may not have acted, so retry only if the app is idempotent.
	CodeAppTimeout Code = 4111
	// CodeInvalidApp means the customized content's app, mod or act is missing
	// or breaks the charset, or "data" is not such an object.
	CodeInvalidApp Code = 4112
	// CodeInvalidPresence means a presence.subscribe or presence.unsubscribe
	// whose data is not {"users":[…]} with 1 to MaxPresenceUsers user IDs.
	CodeInvalidPresence Code = 4120
)

// Auth and session errors, 4200-4289, and limits, 4290-4299.
const (
	// CodeSignRequired means the server requires "sign" and the frame has none.
	CodeSignRequired Code = 4200
	// CodeSignInvalid means "sign" is not the HMAC-SHA256 of the canonical form
	// under this connection's session key.
	CodeSignInvalid Code = 4201
	// CodeInvalidHandshake means the handshake's "data" is not an object with a
	// string "title" and an optional string "session".
	CodeInvalidHandshake Code = 4210
	// CodeRateLimited means the connection sends too fast; the gateway sends
	// this reply and then closes with WebSocket status 1008.
	CodeRateLimited Code = 4290
	// CodeTooManySubscriptions means the connection would watch the presence
	// of more users than the gateway allows; nothing of this request was
	// subscribed.
	CodeTooManySubscriptions Code = 4291
)

// Server errors, 5000-5099: not the client's fault.
const (
	// CodeInternal means an unexpected server error; the message was not
	// accepted. Not retryable as is: the same input will likely fail again.
	CodeInternal Code = 5000
	// CodeUnavailable means a service the message needs is unavailable; the
	// message was not accepted. Resend the same id later (dedupe makes it
	// safe).
	CodeUnavailable Code = 5001
	// CodeTimeout means the server did not finish in time; the message may or
	// may not have been accepted. Resend the same id (dedupe makes it safe).
	CodeTimeout Code = 5002
)

type codeInfo struct {
	name      string
	text      string
	retryable bool
}

// info is a switch rather than a map so the table cannot be changed at run
// time.
func (c Code) info() (codeInfo, bool) {
	switch c {
	case CodeInvalidJSON:
		return codeInfo{"invalid_json", "frame is not valid JSON", false}, true
	case CodeNotObject:
		return codeInfo{"not_object", "frame is not a JSON object", false}, true
	case CodeInvalidType:
		return codeInfo{"invalid_type", "type must be a non-empty string or an integer", false}, true
	case CodeTypeNotAllowed:
		return codeInfo{"type_not_allowed", "transport type is unknown or not allowed from a client", false}, true
	case CodeMissingID:
		return codeInfo{"missing_id", "message id is missing or empty", false}, true
	case CodeInvalidID:
		return codeInfo{"invalid_id", "message id must be a string of at most 128 bytes without control characters", false}, true
	case CodeInvalidDest:
		return codeInfo{"invalid_dest", "dest is not a valid entity ID or username", false}, true
	case CodeInvalidField:
		return codeInfo{"invalid_field", "field has the wrong JSON type", false}, true
	case CodeDuplicateKey:
		return codeInfo{"duplicate_key", "duplicate key", false}, true
	case CodeBinaryFrame:
		return codeInfo{"binary_frame", "binary frames are not supported; send JSON text frames", false}, true
	case CodeInvalidUTF8:
		return codeInfo{"invalid_utf8", "frame is not valid UTF-8", false}, true
	case CodeTooDeep:
		return codeInfo{"too_deep", "frame nests too deeply", false}, true
	case CodeFrameTooLarge:
		return codeInfo{"frame_too_large", "frame is too large", false}, true
	case CodeUnknownType:
		return codeInfo{"unknown_type", "Incorrect type of message (type isn't implemented in the server)", false}, true
	case CodeDestNotFound:
		return codeInfo{"dest_not_found", "destination not found", false}, true
	case CodeNotMember:
		return codeInfo{"not_member", "not a member of the room", false}, true
	case CodeForbidden:
		return codeInfo{"forbidden", "forbidden", false}, true
	case CodeAppNoResponder:
		return codeInfo{"app_no_responder", "no application backend for this app/mod/act", true}, true
	case CodeAppTimeout:
		return codeInfo{"app_timeout", "application backend timed out", false}, true
	case CodeInvalidApp:
		return codeInfo{"invalid_app", "invalid app, mod or act", false}, true
	case CodeInvalidPresence:
		return codeInfo{"invalid_presence", "presence request must be {\"users\":[…]} with 1 to 1000 user IDs", false}, true
	case CodeSignRequired:
		return codeInfo{"sign_required", "signature required", false}, true
	case CodeSignInvalid:
		return codeInfo{"sign_invalid", "signature invalid", false}, true
	case CodeInvalidHandshake:
		return codeInfo{"invalid_handshake", "invalid handshake", false}, true
	case CodeRateLimited:
		return codeInfo{"rate_limited", "rate limited", true}, true
	case CodeTooManySubscriptions:
		return codeInfo{"too_many_subscriptions", "too many presence subscriptions", false}, true
	case CodeInternal:
		return codeInfo{"internal", "internal server error", false}, true
	case CodeUnavailable:
		return codeInfo{"unavailable", "service unavailable, retry later", true}, true
	case CodeTimeout:
		return codeInfo{"timeout", "server timed out, retry", true}, true
	}
	return codeInfo{}, false
}

// Codes returns every code of the table in ascending order, for
// documentation and tests.
func Codes() []Code {
	return []Code{
		CodeInvalidJSON, CodeNotObject, CodeInvalidType, CodeTypeNotAllowed,
		CodeMissingID, CodeInvalidID, CodeInvalidDest, CodeInvalidField,
		CodeDuplicateKey, CodeBinaryFrame, CodeInvalidUTF8, CodeTooDeep,
		CodeFrameTooLarge,
		CodeUnknownType, CodeDestNotFound, CodeNotMember, CodeForbidden,
		CodeAppNoResponder, CodeAppTimeout, CodeInvalidApp, CodeInvalidPresence,
		CodeSignRequired, CodeSignInvalid, CodeInvalidHandshake,
		CodeRateLimited, CodeTooManySubscriptions,
		CodeInternal, CodeUnavailable, CodeTimeout,
	}
}

// Known reports whether c is in the table.
func (c Code) Known() bool {
	_, ok := c.info()
	return ok
}

// Name returns the code's stable snake_case name, for logs and metric
// labels; "unknown" outside the table.
func (c Code) Name() string {
	if i, ok := c.info(); ok {
		return i.name
	}
	return "unknown"
}

// Text returns the default errText for the code.
func (c Code) Text() string {
	if i, ok := c.info(); ok {
		return i.text
	}
	return "unknown error"
}

// Retryable reports whether resending the same frame (same id) may succeed
// and is safe: dedupe on (sender, id) stops double delivery.
func (c Code) Retryable() bool {
	i, _ := c.info()
	return i.retryable
}

// String returns the number and name, for example "4006 invalid_dest".
func (c Code) String() string {
	return strconv.Itoa(int(c)) + " " + c.Name()
}
