package protocol

import (
	"encoding/json"
	"strings"
)

// HandshakeState is where a DIMP handshake stands, per the seed's
// handshake_state.
type HandshakeState int

// The handshake states, numbered as in DIMP.
const (
	// HandshakeStart (client → server): hello without a session key, or
	// with an expired one.
	HandshakeStart HandshakeState = 0
	// HandshakeAgain (server → client): handshake again with the new
	// session key in Session.
	HandshakeAgain HandshakeState = 1
	// HandshakeRestart (client → server): hello with a session key.
	HandshakeRestart HandshakeState = 2
	// HandshakeSuccess (server → client): handshake accepted.
	HandshakeSuccess HandshakeState = 3
)

// String names the state.
func (s HandshakeState) String() string {
	switch s {
	case HandshakeStart:
		return "start"
	case HandshakeAgain:
		return "again"
	case HandshakeRestart:
		return "restart"
	case HandshakeSuccess:
		return "success"
	}
	return "unknown"
}

// The handshake titles.
const (
	// TitleHello opens a handshake (client → server).
	TitleHello = "Hello world!"
	// TitleAgain asks the client to handshake again with a new session key.
	TitleAgain = "DIM?"
	// TitleSuccess accepts the handshake.
	TitleSuccess = "DIM!"
)

// Handshake is the "data" of a handshake data message:
// {"title":"Hello world!","session":"<key>"}.
type Handshake struct {
	// Title is TitleHello, TitleAgain or TitleSuccess.
	Title string
	// Session is the session key; empty when the client has none.
	Session string
}

// State derives the state as the seed does: "DIM!" is success, "DIM?" is
// again, and any other title is a client hello, a start without a session
// key or a restart with one.
func (h Handshake) State() HandshakeState {
	switch h.Title {
	case TitleSuccess:
		return HandshakeSuccess
	case TitleAgain:
		return HandshakeAgain
	}
	if h.Session == "" {
		return HandshakeStart
	}
	return HandshakeRestart
}

// HandshakeOffer is the client's hello, with its old session key or none
// (start and restart).
func HandshakeOffer(session string) Handshake {
	return Handshake{Title: TitleHello, Session: session}
}

// HandshakeAsk is the server's answer asking the client to handshake again
// with a new session key.
func HandshakeAsk(session string) Handshake {
	return Handshake{Title: TitleAgain, Session: session}
}

// HandshakeAccepted is the server's answer accepting the session key.
func HandshakeAccepted(session string) Handshake {
	return Handshake{Title: TitleSuccess, Session: session}
}

// ParseHandshake reads a handshake from a data message's "data": an object
// with a non-empty string "title" and an optional string (or null)
// "session". Other keys are ignored, as in DIMP; a repeated title or
// session is rejected. Errors are *Error with CodeInvalidHandshake.
func ParseHandshake(data []byte) (Handshake, error) {
	var h Handshake
	var seenTitle, seenSession bool
	it, err := newObjectIter(data)
	if err != nil {
		return h, Errorf(CodeInvalidHandshake, "%w", err)
	}
	for {
		key, v, done, err := it.next()
		if err != nil {
			return Handshake{}, Errorf(CodeInvalidHandshake, "%w", err)
		}
		if done {
			break
		}
		var dst *string
		switch string(key) {
		case "title":
			if seenTitle {
				return Handshake{}, Errorf(CodeInvalidHandshake, "duplicate title")
			}
			seenTitle, dst = true, &h.Title
		case "session":
			if seenSession {
				return Handshake{}, Errorf(CodeInvalidHandshake, "duplicate session")
			}
			seenSession, dst = true, &h.Session
			if v.isNull(data) {
				continue
			}
		default:
			continue
		}
		if !v.isString(data) {
			return Handshake{}, Errorf(CodeInvalidHandshake, "%s must be a string", key)
		}
		s, ok := v.str(data)
		if !ok {
			return Handshake{}, Errorf(CodeInvalidHandshake, "%s escapes a lone surrogate", key)
		}
		*dst = s
	}
	if h.Title == "" {
		return Handshake{}, Errorf(CodeInvalidHandshake, "no title")
	}
	return h, nil
}

// AppendHandshake appends h as the JSON "data" of a handshake message;
// session is left out when empty.
func AppendHandshake(dst []byte, h Handshake) []byte {
	dst = append(dst, `{"title":`...)
	dst = appendString(dst, h.Title)
	if h.Session != "" {
		dst = append(dst, `,"session":`...)
		dst = appendString(dst, h.Session)
	}
	return append(dst, '}')
}

// Limits of customized content names.
const (
	// MaxAppLength caps the app ID in bytes.
	MaxAppLength = 128
	// MaxModActLength caps the module and action names in bytes.
	MaxModActLength = 64
)

// CustomizedContent is DIMP application-customized content, the "data" of
// an "app" message: {"app":"chat.dim.sechat","mod":"drift_bottle",
// "act":"throw","extra":{…}}. It is forwarded to the application backend
// listening on the NATS subject derived from app, mod and act.
type CustomizedContent struct {
	// App is the application ID: dot-separated labels of a-z 0-9 '-'
	// (reverse-DNS style), for example "chat.dim.sechat".
	App string
	// Mod is the module: a-z 0-9 '_' '-', for example "drift_bottle".
	Mod string
	// Act is the action: a-z 0-9 '_' '-', for example "throw".
	Act string
	// Extra is the compact JSON of "extra" as sent; nil when absent.
	Extra json.RawMessage
}

// ParseCustomizedContent reads customized content from a data message's
// "data" and validates app, mod and act. Other keys (DIMP's "type", "sn")
// are ignored; a repeated app, mod, act or extra is rejected. Errors are
// *Error with CodeInvalidApp.
func ParseCustomizedContent(data []byte) (CustomizedContent, error) {
	var c CustomizedContent
	var seen [4]bool
	it, err := newObjectIter(data)
	if err != nil {
		return c, Errorf(CodeInvalidApp, "%w", err)
	}
	for {
		key, v, done, err := it.next()
		if err != nil {
			return CustomizedContent{}, Errorf(CodeInvalidApp, "%w", err)
		}
		if done {
			break
		}
		var slot int
		var dst *string
		switch string(key) {
		case "app":
			slot, dst = 0, &c.App
		case "mod":
			slot, dst = 1, &c.Mod
		case "act":
			slot, dst = 2, &c.Act
		case "extra":
			slot = 3
		default:
			continue
		}
		if seen[slot] {
			return CustomizedContent{}, Errorf(CodeInvalidApp, "duplicate %s", key)
		}
		seen[slot] = true
		if dst == nil {
			c.Extra = v.compact(data)
			continue
		}
		if !v.isString(data) {
			return CustomizedContent{}, Errorf(CodeInvalidApp, "%s must be a string", key)
		}
		str, ok := v.str(data)
		if !ok {
			return CustomizedContent{}, Errorf(CodeInvalidApp, "%s escapes a lone surrogate", key)
		}
		*dst = str
	}
	if err := c.Validate(); err != nil {
		return CustomizedContent{}, err
	}
	return c, nil
}

// Validate checks app, mod and act against the charsets that keep them
// single, literal NATS subject tokens (no spaces, '*', '>' or empty tokens),
// as a CodeInvalidApp *Error.
func (c CustomizedContent) Validate() error {
	if err := checkApp(c.App); err != "" {
		return Errorf(CodeInvalidApp, "app %s", err)
	}
	if err := checkName(c.Mod); err != "" {
		return Errorf(CodeInvalidApp, "mod %s", err)
	}
	if err := checkName(c.Act); err != "" {
		return Errorf(CodeInvalidApp, "act %s", err)
	}
	return nil
}

// SubjectSuffix returns "<app>.<mod>.<act>" with the app's dots turned into
// '_', for example "chat_dim_sechat.drift_bottle.throw": always exactly
// three tokens, so a backend can subscribe to one app with
// "<prefix>.app.chat_dim_sechat.>" and to everything with
// "<prefix>.app.*.*.*". The mapping is reversible because '_' is not allowed
// in app IDs. natsx.Subjects.App adds "<prefix>.app.". Call only after
// Validate (ParseCustomizedContent does).
func (c CustomizedContent) SubjectSuffix() string {
	return strings.ReplaceAll(c.App, ".", "_") + "." + c.Mod + "." + c.Act
}

// AppendCustomizedContent appends c as the JSON "data" of an app message;
// extra is left out when nil.
func AppendCustomizedContent(dst []byte, c CustomizedContent) []byte {
	dst = append(dst, `{"app":`...)
	dst = appendString(dst, c.App)
	dst = append(dst, `,"mod":`...)
	dst = appendString(dst, c.Mod)
	dst = append(dst, `,"act":`...)
	dst = appendString(dst, c.Act)
	if len(c.Extra) != 0 {
		dst = append(dst, `,"extra":`...)
		dst = append(dst, c.Extra...)
	}
	return append(dst, '}')
}

// checkApp returns what is wrong with an app ID, or "".
func checkApp(s string) string {
	switch {
	case s == "":
		return "is missing or empty"
	case len(s) > MaxAppLength:
		return "is too long"
	}
	prev := byte('.')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if prev == '.' {
				return "has an empty label"
			}
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-':
		default:
			return "may hold only a-z 0-9 '-' and '.'"
		}
		prev = c
	}
	if prev == '.' {
		return "has an empty label"
	}
	return ""
}

// checkName returns what is wrong with a mod or act name, or "".
func checkName(s string) string {
	switch {
	case s == "":
		return "is missing or empty"
	case len(s) > MaxModActLength:
		return "is too long"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !nameByte(c) {
			return "may hold only a-z 0-9 '_' and '-'"
		}
	}
	return ""
}

func nameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}
