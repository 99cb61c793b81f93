package entity

import "errors"

// Sentinel errors returned (wrapped, with what failed) by the parsers. Match
// them with errors.Is; the wrapping text is for people, not for code.
var (
	// ErrEmpty is returned for an empty entity ID; an empty local part is
	// ErrInvalidLocal and an empty server part ErrMissingServer.
	ErrEmpty = errors.New("entity: empty")

	// ErrTooLong is returned when an entity ID is longer than MaxLength bytes.
	ErrTooLong = errors.New("entity: too long")

	// ErrUnknownSigil is returned when an ID does not start with one of the
	// six sigils @ # ! & % ^.
	ErrUnknownSigil = errors.New("entity: unknown sigil")

	// ErrMissingServer is returned when an ID has no separator or nothing
	// after it.
	ErrMissingServer = errors.New("entity: missing server part")

	// ErrInvalidLocal is returned when a local part breaks the character
	// rules of its kind.
	ErrInvalidLocal = errors.New("entity: invalid local part")

	// ErrInvalidHost is returned when a server part's host is not an IPv4
	// address, a bracketed IPv6 address or a DNS name, in canonical form.
	ErrInvalidHost = errors.New("entity: invalid host")

	// ErrInvalidPort is returned for a port that is not a decimal number in
	// 1-65535 without leading zeros.
	ErrInvalidPort = errors.New("entity: invalid port")

	// ErrWrongKind is returned when an ID parses but is not the kind the
	// caller needs, for example a room where a user is expected.
	ErrWrongKind = errors.New("entity: wrong kind")
)
