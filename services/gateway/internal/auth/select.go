package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// Selector is the gateway's Authenticator: it sends each token to the one
// verifier its kind calls for. A JWT whose header alg is HS256 goes to
// HS256, one whose alg is RS256 or ES256 to JWKS, when that verifier is
// configured; every other token, a JWT of another alg or not a JWT at all,
// goes to Hook when there is one and is refused as invalid otherwise.
//
// The header is read before any signature is checked, which is safe
// because the choice only decides which check a token must pass: each
// verifier admits its own algorithms alone, and a token refused by one is
// never offered to another.
type Selector struct {
	// HS256 verifies HS256 JWTs; nil when no secret is configured.
	HS256 *HS256
	// JWKS verifies RS256 and ES256 JWTs; nil when no JWKS URL is
	// configured.
	JWKS *JWKS
	// Hook gets every other token; nil when no auth hook is configured.
	Hook *Hook
}

// ErrNoVerifier is returned by Validate for a Selector with no verifier.
var ErrNoVerifier = errors.New("auth: no JWT secret, JWKS URL or auth hook configured")

// Validate reports a Selector that could accept no token at all.
func (s *Selector) Validate() error {
	if s.HS256 == nil && s.JWKS == nil && s.Hook == nil {
		return ErrNoVerifier
	}
	return nil
}

// Authenticate implements Authenticator.
func (s *Selector) Authenticate(ctx context.Context, r *http.Request) (Identity, error) {
	raw, err := Token(r)
	if err != nil {
		return Identity{}, err
	}
	switch alg := headerAlg(raw); {
	case alg == jwt.SigningMethodHS256.Alg() && s.HS256 != nil:
		return s.HS256.verify(raw)
	case (alg == jwt.SigningMethodRS256.Alg() || alg == jwt.SigningMethodES256.Alg()) && s.JWKS != nil:
		return s.JWKS.verify(ctx, raw)
	case s.Hook != nil:
		return s.Hook.verify(ctx, raw, r)
	case alg == "":
		return Identity{}, fmt.Errorf("authenticate: not a JWT: %w", ErrInvalidToken)
	default:
		return Identity{}, fmt.Errorf("authenticate: alg %q not configured: %w", alg, ErrInvalidToken)
	}
}

// headerAlg returns the alg of raw's JWT header, or "" when raw is not a
// JWT in compact form (three base64url parts, the first a JSON object).
func headerAlg(raw string) string {
	head, rest, ok := strings.Cut(raw, ".")
	if !ok || strings.Count(rest, ".") != 1 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return ""
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(b, &h) != nil {
		return ""
	}
	return h.Alg
}
