// Package auth authenticates WebSocket clients before the upgrade. A client
// presents a token in "Authorization: Bearer <token>" or, because browsers
// cannot set headers on a WebSocket, in the query as "token=<token>". The
// username it names becomes the entity ID "@<username>@<server name>".
//
// Three verifiers exist, any of them configured alone or together:
//   - HS256: a JWT signed with a shared secret.
//   - JWKS: a JWT signed with RS256 or ES256 by a key published in a JSON
//     Web Key Set at a URL, fetched, cached and refreshed in the background.
//   - Hook: any other token, offered to an out-of-process AuthHookService
//     (bachata.auth.v1) over gRPC, for deployments with their own sessions.
//
// Selector picks one per token by its JWT header's alg: HS256 goes to the
// secret, RS256 and ES256 to the key set, when those are configured; every
// other token (another alg, or not a JWT at all) goes to the hook when there
// is one and is refused otherwise. The alg only chooses which check a token
// must pass: each verifier admits its own algorithms alone, and a token one
// of them refused is never offered to another.
//
// For a JWT, sub is the username and exp is required. Identity.ExpiresAt
// carries the expiry to the WebSocket endpoint, which closes the connection
// with 4401 once it has passed (plus Leeway).
package auth

import (
	"context"
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

// Sentinel errors of Authenticate. ErrUnavailable means HTTP 503; every
// other one means HTTP 401.
var (
	// ErrNoToken is returned when the request carries no token at all.
	ErrNoToken = errors.New("missing token")
	// ErrInvalidToken is returned for a token that is malformed, signed
	// with another key or algorithm, not yet valid, missing exp, or
	// refused by the auth hook.
	ErrInvalidToken = errors.New("invalid token")
	// ErrExpired is returned for a token whose exp has passed.
	ErrExpired = errors.New("token expired")
	// ErrBadSubject is returned when sub is missing or not a valid
	// username.
	ErrBadSubject = errors.New("invalid subject")
	// ErrUnavailable is returned when the token could not be checked: the
	// auth hook failed or did not answer in time, or no JWKS key set could
	// be loaded. It means 503, never 401, so an outage of a dependency
	// never looks like a bad token to clients, which would then drop their
	// credentials.
	ErrUnavailable = errors.New("authentication unavailable")
)

// Identity is who a verified token names.
type Identity struct {
	// User is the entity ID, "@<username>@<server name>".
	User string
	// Username is the token's sub claim.
	Username string
	// ExpiresAt is when the token stops being valid, its exp; zero means
	// never (only an auth hook can say so). A connection still open then,
	// plus Leeway, is closed.
	ExpiresAt time.Time
}

// Authenticator verifies the credentials of an HTTP request.
type Authenticator interface {
	// Authenticate returns the identity the request's token names, or an
	// error wrapping one of the sentinel errors above. ctx bounds any call
	// it makes: the request's context, so a client that goes away ends
	// it.
	Authenticate(ctx context.Context, r *http.Request) (Identity, error)
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

// Authenticate implements Authenticator: the token must be an HS256 JWT.
func (a *HS256) Authenticate(_ context.Context, r *http.Request) (Identity, error) {
	raw, err := Token(r)
	if err != nil {
		return Identity{}, err
	}
	return a.verify(raw)
}

// verify checks a raw token.
func (a *HS256) verify(raw string) (Identity, error) {
	var claims jwt.RegisteredClaims
	_, err := a.parser.ParseWithClaims(raw, &claims, a.key)
	if err != nil {
		return Identity{}, fmt.Errorf("authenticate HS256: %w", jwtError(err))
	}
	return identityOf(&claims, a.serverName, a.validUsername)
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

// jwtError maps an error of jwt.Parser to the sentinel it means, keeping
// the parser's error for the log.
func jwtError(err error) error {
	switch {
	case errors.Is(err, ErrUnavailable):
		return err
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrExpired
	default:
		return fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
}

// identityOf is the identity of a verified JWT's claims, once its sub is
// checked against the username rule.
func identityOf(claims *jwt.RegisteredClaims, serverName string, validUsername func(string) bool) (Identity, error) {
	if !validUsername(claims.Subject) {
		return Identity{}, fmt.Errorf("authenticate: sub %q: %w", claims.Subject, ErrBadSubject)
	}
	id := Identity{User: "@" + claims.Subject + "@" + serverName, Username: claims.Subject}
	if claims.ExpiresAt != nil {
		id.ExpiresAt = claims.ExpiresAt.Time
	}
	return id, nil
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

// Reason is the short text sent with a 401 or 503 for err: what is wrong,
// never why in detail, so a probe learns nothing about the key, the parser
// or the hook.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrUnavailable):
		return ErrUnavailable.Error()
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
