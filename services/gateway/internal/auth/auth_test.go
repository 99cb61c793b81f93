package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

const secret = "0123456789abcdef-test"

var username = regexp.MustCompile(`^[a-z0-9._=/-]+$`).MatchString

func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	require.NoError(t, err)
	return s
}

func claims(sub string, exp time.Duration) jwt.RegisteredClaims {
	now := time.Now()
	return jwt.RegisteredClaims{Subject: sub, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(exp))}
}

func TestHS256ExpiresAtIsTheTokensExp(t *testing.T) {
	t.Parallel()
	exp := time.Now().Add(90 * time.Minute).Truncate(time.Second)
	tok := sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.RegisteredClaims{Subject: "alice", ExpiresAt: jwt.NewNumericDate(exp)})
	got, err := NewHS256([]byte(secret), "example.org", username).Authenticate(t.Context(), bearer(tok))
	require.NoError(t, err)
	require.True(t, exp.Equal(got.ExpiresAt), "ExpiresAt %s, exp %s", got.ExpiresAt, exp)
}

// bearer is a GET /ws request carrying tok in the Authorization header.
func bearer(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/ws", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

func TestHS256(t *testing.T) {
	t.Parallel()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	good := sign(t, jwt.SigningMethodHS256, []byte(secret), claims("alice", time.Hour))

	tests := []struct {
		name    string
		header  string // Authorization header value; empty means none
		query   string // token query parameter; empty means none
		want    Identity
		wantErr error
	}{
		{name: "bearer header", header: "Bearer " + good, want: Identity{User: "@alice@example.org", Username: "alice"}},
		{name: "bearer scheme any case", header: "bearer " + good, want: Identity{User: "@alice@example.org", Username: "alice"}},
		{name: "query", query: good, want: Identity{User: "@alice@example.org", Username: "alice"}},
		{name: "header wins over query", header: "Bearer " + good, query: "junk", want: Identity{User: "@alice@example.org", Username: "alice"}},
		{name: "none", wantErr: ErrNoToken},
		{name: "empty bearer", header: "Bearer ", wantErr: ErrNoToken},
		{name: "basic scheme", header: "Basic YWxpY2U6eA==", wantErr: ErrInvalidToken},
		{name: "garbage", query: "not.a.jwt", wantErr: ErrInvalidToken},
		{name: "too long", query: strings.Repeat("a", MaxTokenBytes+1), wantErr: ErrInvalidToken},
		{name: "wrong secret", query: sign(t, jwt.SigningMethodHS256, []byte("another-secret-0123456"), claims("alice", time.Hour)), wantErr: ErrInvalidToken},
		{name: "expired", query: sign(t, jwt.SigningMethodHS256, []byte(secret), claims("alice", -time.Minute)), wantErr: ErrExpired},
		{name: "expired within leeway", query: sign(t, jwt.SigningMethodHS256, []byte(secret), claims("alice", -time.Second)), want: Identity{User: "@alice@example.org", Username: "alice"}},
		{name: "no exp", query: sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.RegisteredClaims{Subject: "alice"}), wantErr: ErrInvalidToken},
		{name: "not yet valid", query: sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.RegisteredClaims{
			Subject: "alice", ExpiresAt: jwt.NewNumericDate(time.Now().Add(2 * time.Hour)), NotBefore: jwt.NewNumericDate(time.Now().Add(time.Hour)),
		}), wantErr: ErrInvalidToken},
		{name: "issued in the future", query: sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.RegisteredClaims{
			Subject: "alice", ExpiresAt: jwt.NewNumericDate(time.Now().Add(2 * time.Hour)), IssuedAt: jwt.NewNumericDate(time.Now().Add(time.Hour)),
		}), wantErr: ErrInvalidToken},
		{name: "alg none", query: sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims("alice", time.Hour)), wantErr: ErrInvalidToken},
		{name: "alg HS512", query: sign(t, jwt.SigningMethodHS512, []byte(secret), claims("alice", time.Hour)), wantErr: ErrInvalidToken},
		{name: "alg ES256", query: sign(t, jwt.SigningMethodES256, ecKey, claims("alice", time.Hour)), wantErr: ErrInvalidToken},
		{name: "no sub", query: sign(t, jwt.SigningMethodHS256, []byte(secret), claims("", time.Hour)), wantErr: ErrBadSubject},
		{name: "sub outside charset", query: sign(t, jwt.SigningMethodHS256, []byte(secret), claims("Alice@x", time.Hour)), wantErr: ErrBadSubject},
	}
	a := NewHS256([]byte(secret), "example.org", username)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/ws", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			if tt.query != "" {
				r.URL.RawQuery = "token=" + tt.query
			}
			got, err := a.Authenticate(t.Context(), r)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.Equal(t, tt.wantErr.Error(), Reason(err))
				return
			}
			require.NoError(t, err)
			require.False(t, got.ExpiresAt.IsZero(), "exp is carried to the connection")
			got.ExpiresAt = time.Time{}
			require.Equal(t, tt.want, got)
		})
	}
}
