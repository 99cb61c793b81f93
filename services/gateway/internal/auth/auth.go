// Package auth authenticates WebSocket clients before the upgrade. A client
// presents a JWT in "Authorization: Bearer <jwt>" or, because browsers
// cannot set headers on a WebSocket, in the query as "token=<jwt>". The
// token's "sub" claim is the username; the user's entity ID is
// "@<sub>@<server name>".
//
// Only HS256 is implemented now. Authenticator is an interface so RS256 and
// ES256 through a JWKS URL can be added beside it without touching the
// WebSocket endpoint.
package auth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MaxTokenBytes bounds the token accepted; a longer one is rejected before
// any parsing, so a client cannot make the gateway decode megabytes.
const MaxTokenBytes = 4096

// Leeway is the clock skew tolerated on exp, nbf and iat, so a token
// minted on a host whose clock is slightly ahead is not refused.
const Leeway = 10 * time.Second

// Sentinel errors of Authenticate. Every one of them means HTTP 401.
var (
	// ErrNoToken is returned when the request carries no token at all.
	ErrNoToken = errors.New("missing token")
	// ErrInvalidToken is returned for a token that is malformed, signed
	// with another key or algorithm, not yet valid, or missing exp.
	ErrInvalidToken = errors.New("invalid token")
	// ErrExpired is returned for a token whose exp has passed.
	ErrExpired = errors.New("token expired")
	// ErrBadSubject is returned when sub is missing or not a valid
	// username.
	ErrBadSubject = errors.New("invalid subject")
)

// Identity is who a verified token names.
type Identity struct {
	// User is the entity ID, "@<username>@<server name>".
	User string
	// Username is the token's sub claim.
	Username string
}

// Authenticator verifies the credentials of an HTTP request.
type Authenticator interface {
	// Authenticate returns the identity the request's token names, or an
	// error wrapping one of the sentinel errors above.
	Authenticate(r *http.Request) (Identity, error)
}

// HS256 verifies tokens signed with HMAC-SHA256 and a shared secret.
// The exp claim is required: a token without one would be valid forever,
// and a leaked one could never be revoked by waiting. Tokens with any other
// algorithm, "none" included, are rejected.
type HS256 struct {
	secret     []byte
	serverName string
	parser     *jwt.Parser
	// validUsername reports whether sub is a valid username.
	validUsername func(string) bool
}

// NewHS256 returns an authenticator for tokens signed with secret whose
// identities live on serverName. validUsername checks the sub claim against
// the username rules of the protocol.
func NewHS256(secret []byte, serverName string, validUsername func(string) bool) *HS256 {
	return &HS256{
		secret:     secret,
		serverName: serverName,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(Leeway),
		),
		validUsername: validUsername,
	}
}

// Authenticate implements Authenticator.
func (a *HS256) Authenticate(r *http.Request) (Identity, error) {
	raw, err := Token(r)
	if err != nil {
		return Identity{}, err
	}
	var claims jwt.RegisteredClaims
	_, err = a.parser.ParseWithClaims(raw, &claims, a.key)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Identity{}, fmt.Errorf("authenticate: %w", ErrExpired)
	case err != nil:
		return Identity{}, fmt.Errorf("authenticate: %w: %w", ErrInvalidToken, err)
	}
	if !a.validUsername(claims.Subject) {
		return Identity{}, fmt.Errorf("authenticate: sub %q: %w", claims.Subject, ErrBadSubject)
	}
	return Identity{User: "@" + claims.Subject + "@" + a.serverName, Username: claims.Subject}, nil
}

// key hands the secret to the parser, refusing any non-HMAC method a
// second time so a future change to the parser options cannot open the
// door to algorithm confusion.
func (a *HS256) key(t *jwt.Token) (any, error) {
	if _, ok := t.Method.(*jwt.SigningMethodHMAC); !ok {
		return nil, fmt.Errorf("signing method %v: %w", t.Header["alg"], ErrInvalidToken)
	}
	return a.secret, nil
}

// Token returns the raw token of r: from "Authorization: Bearer <jwt>" if
// that header is present, else from the "token" query parameter.
func Token(r *http.Request) (string, error) {
	var tok string
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "", fmt.Errorf("authorization header: want Bearer: %w", ErrInvalidToken)
		}
		tok = strings.TrimSpace(rest)
	} else {
		tok = r.URL.Query().Get("token")
	}
	switch {
	case tok == "":
		return "", ErrNoToken
	case len(tok) > MaxTokenBytes:
		return "", fmt.Errorf("token of %d bytes: %w", len(tok), ErrInvalidToken)
	}
	return tok, nil
}

// Reason is the short text sent with a 401 for err: what is wrong, never
// why in detail, so a probe learns nothing about the key or the parser.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrNoToken):
		return ErrNoToken.Error()
	case errors.Is(err, ErrExpired):
		return ErrExpired.Error()
	case errors.Is(err, ErrBadSubject):
		return ErrBadSubject.Error()
	default:
		return ErrInvalidToken.Error()
	}
}
