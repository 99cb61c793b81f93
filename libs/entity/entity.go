// Package entity parses, validates and formats the entity IDs of Protocol
// Core: users (@user@server), room aliases (#alias:server), rooms
// (!room@server), messages (&uuid:server), MSISDN users (%msisdn:server) and
// email users (^user_at_host:server).
//
// Every valid ID has exactly one spelling: lowercase only, canonical IPv6,
// no leading zeros in ports or IPv4 octets, no trailing dot in DNS names. So
// an ID's string is a safe key (Redis, NATS tokens after hashing, maps)
// without normalisation, and Parse(s).String() == s for every valid s.
package entity

import (
	"fmt"
	"strings"
)

// MaxLength caps a whole entity ID (sigil, local part, separator and server
// part) in bytes, as Matrix does for user IDs, so IDs fit in keys and logs.
const MaxLength = 255

// MaxMSISDNDigits is the longest MSISDN allowed: E.164 numbers have at most
// 15 digits.
const MaxMSISDNDigits = 15

// EmailSeparator joins the two halves of an email user's local part:
// ^<email username>_at_<email hostname>:<server>.
const EmailSeparator = "_at_"

// Kind says which of the six entity kinds an ID is; its sigil is the ID's
// first byte.
type Kind uint8

// The entity kinds. The zero Kind is no kind, so a zero ID is invalid.
const (
	// KindUser is a user: @<username>@<server>.
	KindUser Kind = iota + 1
	// KindRoomAlias is a human-chosen room name: #<alias>:<server>.
	KindRoomAlias
	// KindRoom is a room ID (should be a UUID): !<room>@<server>.
	KindRoom
	// KindMessage is a message ID: &<uuid>:<server the message came from>.
	KindMessage
	// KindMSISDN is a user known by phone number: %<digits, no +>:<server>.
	KindMSISDN
	// KindEmail is a user known by email: ^<user>_at_<host>:<server>.
	KindEmail
)

// Sigil returns the first byte of IDs of kind k, or 0 for an unknown kind.
func (k Kind) Sigil() byte {
	switch k {
	case KindUser:
		return '@'
	case KindRoomAlias:
		return '#'
	case KindRoom:
		return '!'
	case KindMessage:
		return '&'
	case KindMSISDN:
		return '%'
	case KindEmail:
		return '^'
	}
	return 0
}

// Separator returns the byte between local and server part: '@' for users
// and rooms, ':' for the others (as the seed's grammar says), or 0 for an
// unknown kind.
func (k Kind) Separator() byte {
	switch k {
	case KindUser, KindRoom:
		return '@'
	case KindRoomAlias, KindMessage, KindMSISDN, KindEmail:
		return ':'
	}
	return 0
}

// String returns a lowercase name of the kind for messages and logs.
func (k Kind) String() string {
	switch k {
	case KindUser:
		return "user"
	case KindRoomAlias:
		return "room alias"
	case KindRoom:
		return "room"
	case KindMessage:
		return "message"
	case KindMSISDN:
		return "msisdn user"
	case KindEmail:
		return "email user"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// KindOf returns the kind whose sigil is c, or 0 when c is no sigil.
func KindOf(c byte) Kind {
	switch c {
	case '@':
		return KindUser
	case '#':
		return KindRoomAlias
	case '!':
		return KindRoom
	case '&':
		return KindMessage
	case '%':
		return KindMSISDN
	case '^':
		return KindEmail
	}
	return 0
}

// ID is a parsed entity ID. Local and Server are substrings of the parsed
// text, so parsing does not allocate. The zero ID is not valid.
type ID struct {
	// Kind is the entity kind, from the sigil.
	Kind Kind
	// Local is the part between sigil and separator, for example "bob".
	Local string
	// Server is the server part as written, for example "localhost:8448".
	Server string
}

// Parse parses and validates an entity ID of any kind.
func Parse(s string) (ID, error) {
	if s == "" {
		return ID{}, ErrEmpty
	}
	if len(s) > MaxLength {
		return ID{}, fmt.Errorf("entity of %d bytes: %w", len(s), ErrTooLong)
	}
	kind := KindOf(s[0])
	if kind == 0 {
		return ID{}, fmt.Errorf("first byte %q: %w", s[0], ErrUnknownSigil)
	}
	// The separator cannot occur in a valid local part, so the first one
	// ends it; the server part may contain more (port, IPv6).
	rest := s[1:]
	sep := strings.IndexByte(rest, kind.Separator())
	if sep < 0 {
		return ID{}, fmt.Errorf("%s ID: no %q: %w", kind, kind.Separator(), ErrMissingServer)
	}
	id := ID{Kind: kind, Local: rest[:sep], Server: rest[sep+1:]}
	if err := id.validate(); err != nil {
		return ID{}, err
	}
	return id, nil
}

// New returns the ID of the given kind, local part and server part, after
// validating all three.
func New(kind Kind, local, server string) (ID, error) {
	if kind.Sigil() == 0 {
		return ID{}, fmt.Errorf("%s: %w", kind, ErrUnknownSigil)
	}
	id := ID{Kind: kind, Local: local, Server: server}
	if n := id.length(); n > MaxLength {
		return ID{}, fmt.Errorf("%s ID of %d bytes: %w", kind, n, ErrTooLong)
	}
	if err := id.validate(); err != nil {
		return ID{}, err
	}
	return id, nil
}

func (id ID) length() int { return 2 + len(id.Local) + len(id.Server) }

func (id ID) validate() error {
	if err := checkLocal(id.Kind, id.Local); err != nil {
		return fmt.Errorf("%s ID local part: %w", id.Kind, err)
	}
	if id.Server == "" {
		return fmt.Errorf("%s ID: %w", id.Kind, ErrMissingServer)
	}
	if _, err := ParseServer(id.Server); err != nil {
		return fmt.Errorf("%s ID server part: %w", id.Kind, err)
	}
	return nil
}

// String returns the ID's text, for example "@bob@localhost". The zero ID
// gives "".
func (id ID) String() string {
	if id.Kind.Sigil() == 0 {
		return ""
	}
	return string(id.AppendTo(make([]byte, 0, id.length())))
}

// AppendTo appends the ID's text to dst, for callers building frames or keys
// without an intermediate string.
func (id ID) AppendTo(dst []byte) []byte {
	if id.Kind.Sigil() == 0 {
		return dst
	}
	dst = append(dst, id.Kind.Sigil())
	dst = append(dst, id.Local...)
	dst = append(dst, id.Kind.Separator())
	return append(dst, id.Server...)
}

// IsZero reports whether id is the zero ID.
func (id ID) IsZero() bool { return id == ID{} }

// Email returns the email address of a KindEmail ID ("user@host" from
// "^user_at_host:server"); ok is false for other kinds.
func (id ID) Email() (address string, ok bool) {
	if id.Kind != KindEmail {
		return "", false
	}
	i := strings.LastIndex(id.Local, EmailSeparator)
	if i < 0 {
		return "", false
	}
	return id.Local[:i] + "@" + id.Local[i+len(EmailSeparator):], true
}

// ValidLocal reports whether s is a valid username, room alias or room ID
// local part: not empty, only a-z 0-9 . _ = - / (lowercase only), and short
// enough to fit an ID.
func ValidLocal(s string) bool { return checkCharset(s) == nil }

// ValidDest reports, as an error, whether s can be the dest of a data
// message: an entity ID of any kind or a bare username (the local part of a
// user on the receiving server).
func ValidDest(s string) error {
	if s != "" && KindOf(s[0]) != 0 {
		_, err := Parse(s)
		return err
	}
	if err := checkBare(s); err != nil {
		return fmt.Errorf("bare username: %w", err)
	}
	return nil
}

// ResolveUser returns the user a dest or login name refers to: "@bob@server"
// as is, or a bare "bob" as @bob@<defaultServer>. Other kinds are
// ErrWrongKind. Routing uses it so that both spellings reach the same user.
func ResolveUser(destOrBare, defaultServer string) (ID, error) {
	if destOrBare != "" && KindOf(destOrBare[0]) != 0 {
		id, err := Parse(destOrBare)
		if err != nil {
			return ID{}, err
		}
		if id.Kind != KindUser {
			return ID{}, fmt.Errorf("%s ID where a user is expected: %w", id.Kind, ErrWrongKind)
		}
		return id, nil
	}
	if err := checkBare(destOrBare); err != nil {
		return ID{}, fmt.Errorf("bare username: %w", err)
	}
	return New(KindUser, destOrBare, defaultServer)
}

func checkBare(s string) error {
	if len(s) > MaxLength {
		return fmt.Errorf("%d bytes: %w", len(s), ErrTooLong)
	}
	return checkCharset(s)
}

// checkLocal applies the rules of kind to a local part.
func checkLocal(kind Kind, s string) error {
	switch kind {
	case KindMSISDN:
		return checkMSISDN(s)
	case KindEmail:
		return checkEmail(s)
	}
	// Users, aliases and rooms follow the seed's rule; message IDs
	// (UUIDs, lowercase) fit it too.
	return checkCharset(s)
}

// checkCharset enforces the Protocol Core rule for usernames, aliases and
// room IDs: not empty; a-z 0-9 . _ = - / only.
func checkCharset(s string) error {
	if s == "" {
		return fmt.Errorf("empty: %w", ErrInvalidLocal)
	}
	for i := 0; i < len(s); i++ {
		if !localByte(s[i]) {
			return fmt.Errorf("byte %q at %d: %w", s[i], i, ErrInvalidLocal)
		}
	}
	return nil
}

func localByte(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '=' || c == '-' || c == '/'
}

func checkMSISDN(s string) error {
	if s == "" {
		return fmt.Errorf("empty msisdn: %w", ErrInvalidLocal)
	}
	if len(s) > MaxMSISDNDigits {
		return fmt.Errorf("msisdn of %d digits, at most %d: %w", len(s), MaxMSISDNDigits, ErrInvalidLocal)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return fmt.Errorf("msisdn byte %q at %d, digits only: %w", s[i], i, ErrInvalidLocal)
		}
	}
	return nil
}

// checkEmail validates "<user>_at_<host>": the email username follows the
// local-part charset, the hostname is a DNS name (which has no '_', so the
// last "_at_" is the separator even when the username contains one).
func checkEmail(s string) error {
	if s == "" {
		return fmt.Errorf("empty email: %w", ErrInvalidLocal)
	}
	i := strings.LastIndex(s, EmailSeparator)
	if i < 0 {
		return fmt.Errorf("email without %q: %w", EmailSeparator, ErrInvalidLocal)
	}
	if err := checkCharset(s[:i]); err != nil {
		return fmt.Errorf("email username: %w", err)
	}
	if err := checkDNSName(s[i+len(EmailSeparator):]); err != nil {
		return fmt.Errorf("email hostname: %w: %w", ErrInvalidLocal, err)
	}
	return nil
}
