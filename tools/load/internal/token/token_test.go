package token

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

func TestMint(t *testing.T) {
	t.Parallel()
	const secret = "0123456789abcdef"
	m, err := NewMinter(secret, time.Hour)
	require.NoError(t, err)
	s, err := m.Mint("idle-7")
	require.NoError(t, err)
	var claims jwt.RegisteredClaims
	_, err = jwt.ParseWithClaims(s, &claims, func(*jwt.Token) (any, error) { return []byte(secret), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
	require.NoError(t, err)
	require.Equal(t, "idle-7", claims.Subject)
}

func TestShortSecret(t *testing.T) {
	t.Parallel()
	_, err := NewMinter("short", time.Hour)
	require.ErrorIs(t, err, ErrShortSecret)
}
