// Package token mints the HS256 client tokens the gateway accepts, the way
// `go run ./deploy/local token <user>` does: sub is the username, with iat
// and exp.
package token

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MinSecret is the shortest secret accepted, the gateway's own minimum.
const MinSecret = 16

// ErrShortSecret is returned by NewMinter for a secret the gateway would
// refuse to start with.
var ErrShortSecret = errors.New("jwt secret shorter than 16 bytes")

// Minter signs tokens with one secret.
type Minter struct {
	secret []byte
	ttl    time.Duration
}

// NewMinter returns a Minter whose tokens expire ttl after they are minted.
func NewMinter(secret string, ttl time.Duration) (*Minter, error) {
	if len(secret) < MinSecret {
		return nil, ErrShortSecret
	}
	return &Minter{secret: []byte(secret), ttl: ttl}, nil
}

// Mint returns a signed token for user.
func (m *Minter) Mint(user string) (string, error) {
	now := time.Now()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject:   user,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(m.ttl)),
	}).SignedString(m.secret)
	if err != nil {
		return "", fmt.Errorf("sign token for %q: %w", user, err)
	}
	return s, nil
}
