package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Error is a client-facing error: what goes into an ":error" reply, plus the
// id and type of the frame it answers and the cause for logs. It is the
// error type of this package; find it with errors.As, or compare codes with
// errors.Is(err, &Error{Code: CodeX}).
type Error struct {
	// Code is the errCode.
	Code Code
	// Text is the errText; empty means Code.Text().
	Text string
	// Payload is the errPayload, a JSON object; empty means {}.
	Payload json.RawMessage
	// ID is the id of the frame answered, when one could be read.
	ID string
	// Type is the string type of the frame answered, when one could be
	// read; the reply's type is Type + ":error", or "error" when empty.
	Type string
	// Err is the cause, for errors.Is/As and logs; never sent to clients.
	Err error
}

// NewError returns an *Error with the code's default text.
func NewError(code Code) *Error { return &Error{Code: code} }

// Errorf returns an *Error whose text is the code's default text followed by
// the formatted detail, and whose cause is fmt.Errorf(format, args...) (so
// %w works). The detail reaches the client: put only what is safe to show
// the sender, which is anything derived from its own frame.
func Errorf(code Code, format string, args ...any) *Error {
	cause := fmt.Errorf(format, args...)
	return &Error{Code: code, Text: code.Text() + ": " + cause.Error(), Err: cause}
}

// AsError returns err as an *Error: the one in its chain, or, for any other
// error, CodeInternal with the default text so internal details never reach
// a client. It returns nil for nil.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	return &Error{Code: CodeInternal, Err: err}
}

// For returns a copy of e answering the frame with the given id and type.
func (e *Error) For(id, typ string) *Error {
	c := *e
	c.ID, c.Type = id, typ
	return &c
}

// ErrText returns the errText sent to the client.
func (e *Error) ErrText() string {
	if e.Text != "" {
		return e.Text
	}
	return e.Code.Text()
}

// ReplyType returns the type of the reply: "<type>:error", or "error" when
// the frame's type is unknown.
func (e *Error) ReplyType() string {
	if e.Type == "" {
		return TypeError
	}
	return e.Type + ErrorSuffix
}

// Error returns "protocol: <code> <text>".
func (e *Error) Error() string {
	return "protocol: " + strconv.Itoa(int(e.Code)) + " " + e.ErrText()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same Code, so that
// errors.Is(err, &Error{Code: CodeTimeout}) tests a code through wrapping.
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) {
		return false
	}
	return t.Code == e.Code
}

// Retryable reports whether resending the same frame may succeed.
func (e *Error) Retryable() bool { return e.Code.Retryable() }

// AppendError appends the ":error" reply for e:
// {"id":…,"type":"<type>:error","data":{"errCode":N,"errText":"…","errPayload":{…}}}.
// "id" is left out when e.ID is empty; a Payload that is not a valid JSON
// object is replaced by {} so the reply is always valid JSON.
func AppendError(dst []byte, e *Error) []byte {
	dst = append(dst, '{')
	if e.ID != "" {
		dst = append(dst, `"id":`...)
		dst = appendString(dst, e.ID)
		dst = append(dst, ',')
	}
	dst = append(dst, `"type":`...)
	if e.Type == "" {
		dst = append(dst, `"error"`...)
	} else {
		dst = appendString(dst, e.Type+ErrorSuffix)
	}
	dst = append(dst, `,"data":{"errCode":`...)
	dst = strconv.AppendInt(dst, int64(e.Code), 10)
	dst = append(dst, `,"errText":`...)
	dst = appendString(dst, e.ErrText())
	dst = append(dst, `,"errPayload":`...)
	dst = appendPayload(dst, e.Payload)
	return append(dst, "}}"...)
}

func appendPayload(dst []byte, p json.RawMessage) []byte {
	if len(p) == 0 {
		return append(dst, "{}"...)
	}
	s := scanner{b: p, maxDepth: DefaultMaxDepth}
	s.skipWS()
	if s.i >= len(p) || p[s.i] != '{' {
		return append(dst, "{}"...)
	}
	start := s.i
	if err := s.scanValue(0); err != nil {
		return append(dst, "{}"...)
	}
	end := s.i
	if s.skipWS(); s.i != len(p) {
		return append(dst, "{}"...)
	}
	return appendCompact(dst, p[start:end])
}

// ParseError reads an error reply back into an *Error: m's type must be
// "error" or end in ":error", and its data must hold an integer errCode.
// Clients, the load tool and end-to-end tests use it, after decoding with
// Decoder{AllowMissingID: true} (a reply may have no id).
func ParseError(m *DataMessage) (*Error, error) {
	typ, ok := strings.CutSuffix(m.Type, ErrorSuffix)
	if !ok {
		if m.Type != TypeError {
			return nil, fmt.Errorf("parse error reply: type %q is not an error type", m.Type)
		}
		typ = ""
	}
	e := &Error{ID: m.ID, Type: typ}
	var seenCode, seenText, seenPayload bool
	it, err := newObjectIter(m.Data)
	if err != nil {
		return nil, fmt.Errorf("parse error reply: %w", err)
	}
	for {
		key, v, done, err := it.next()
		if err != nil {
			return nil, fmt.Errorf("parse error reply: %w", err)
		}
		if done {
			break
		}
		var seen *bool
		switch string(key) {
		case "errCode":
			seen = &seenCode
			n, ok := v.int64(m.Data)
			if !ok {
				return nil, errors.New("parse error reply: errCode is not an integer")
			}
			e.Code = Code(n)
		case "errText":
			seen = &seenText
			if !v.isString(m.Data) {
				return nil, errors.New("parse error reply: errText is not a string")
			}
			s, ok := v.str(m.Data)
			if !ok {
				return nil, errors.New("parse error reply: errText escapes a lone surrogate")
			}
			e.Text = s
		case "errPayload":
			seen = &seenPayload
			e.Payload = v.compact(m.Data)
		default:
			continue
		}
		if *seen {
			return nil, fmt.Errorf("parse error reply: duplicate %q", key)
		}
		*seen = true
	}
	if !seenCode {
		return nil, errors.New("parse error reply: no errCode")
	}
	return e, nil
}
