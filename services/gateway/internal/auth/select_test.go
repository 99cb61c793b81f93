package auth

import (
	"context"
	"net/http"
	"testing"
	"time"

	authv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/auth/v1"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestSelectorPicksTheVerifierByAlg(t *testing.T) {
	t.Parallel()
	rsaKey, _, ecKey := testKeys(t)
	k := startKeyServer(t, jwksDoc(t, jwkOf(t, "rsa-1", &rsaKey.PublicKey), jwkOf(t, "ec-1", &ecKey.PublicKey)))
	jwks := newJWKS(t, k)
	require.NoError(t, jwks.load(t.Context(), false))
	hs := NewHS256([]byte(secret), "example.org", username)
	// The hook knows one opaque token, and says any JWT it sees is not a
	// session of its own.
	hookSrv := &hookServer{answer: func(_ context.Context, req *authv1.AuthenticateRequest) (*authv1.AuthenticateResponse, error) {
		if req.GetToken() == "session-bob" {
			return &authv1.AuthenticateResponse{Username: "bob"}, nil
		}
		return nil, status.Error(codes.Unauthenticated, "not a session")
	}}
	hook := startHook(t, hookSrv, time.Second)

	hsTok := sign(t, jwt.SigningMethodHS256, []byte(secret), claims("alice", time.Hour))
	rsTok := signKid(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims("alice", time.Hour))
	esTok := signKid(t, jwt.SigningMethodES256, ecKey, "ec-1", claims("alice", time.Hour))
	hs512Tok := sign(t, jwt.SigningMethodHS512, []byte(secret), claims("alice", time.Hour))
	// An HMAC token keyed by the RSA public key, naming the RSA key: must
	// never be checked against the key set.
	confused := signKid(t, jwt.SigningMethodHS256, rsaKey.N.Bytes(), "rsa-1", claims("alice", time.Hour))

	tests := []struct {
		name      string
		sel       Selector
		token     string
		wantUser  string
		wantErr   error
		wantHooks int // calls the hook must have seen
	}{
		{name: "HS256 to the secret", sel: Selector{HS256: hs, JWKS: jwks, Hook: hook}, token: hsTok, wantUser: "@alice@example.org"},
		{name: "RS256 to the key set", sel: Selector{HS256: hs, JWKS: jwks, Hook: hook}, token: rsTok, wantUser: "@alice@example.org"},
		{name: "ES256 to the key set", sel: Selector{HS256: hs, JWKS: jwks, Hook: hook}, token: esTok, wantUser: "@alice@example.org"},
		{name: "opaque token to the hook", sel: Selector{HS256: hs, JWKS: jwks, Hook: hook}, token: "session-bob", wantUser: "@bob@example.org", wantHooks: 1},
		{name: "HS512 to the hook", sel: Selector{HS256: hs, JWKS: jwks, Hook: hook}, token: hs512Tok, wantErr: ErrInvalidToken, wantHooks: 1},
		{name: "HS256 without secret to the hook", sel: Selector{JWKS: jwks, Hook: hook}, token: hsTok, wantErr: ErrInvalidToken, wantHooks: 1},
		{name: "HS256 refused by the secret is not offered to the hook", sel: Selector{HS256: hs, JWKS: jwks, Hook: hook}, token: confused, wantErr: ErrInvalidToken},
		{name: "HS256 without secret or hook", sel: Selector{JWKS: jwks}, token: confused, wantErr: ErrInvalidToken},
		{name: "RS256 without key set or hook", sel: Selector{HS256: hs}, token: rsTok, wantErr: ErrInvalidToken},
		{name: "opaque token without hook", sel: Selector{HS256: hs, JWKS: jwks}, token: "session-bob", wantErr: ErrInvalidToken},
		{name: "hook only", sel: Selector{Hook: hook}, token: "session-bob", wantUser: "@bob@example.org", wantHooks: 1},
		{name: "JWT through the hook only", sel: Selector{Hook: hook}, token: rsTok, wantErr: ErrInvalidToken, wantHooks: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Not parallel: the hook's call count is shared.
			before := len(hookSrv.calls())
			require.NoError(t, tt.sel.Validate())
			got, err := authenticate(t, &tt.sel, tt.token)
			require.Equal(t, tt.wantHooks, len(hookSrv.calls())-before, "calls to the hook")
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantUser, got.User)
		})
	}
}

func TestSelectorWithoutVerifier(t *testing.T) {
	t.Parallel()
	var s Selector
	require.ErrorIs(t, s.Validate(), ErrNoVerifier)
	_, err := s.Authenticate(t.Context(), bearer("anything"))
	require.ErrorIs(t, err, ErrInvalidToken)
}

func TestSelectorNoToken(t *testing.T) {
	t.Parallel()
	s := Selector{HS256: NewHS256([]byte(secret), "example.org", username)}
	r, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "/ws", nil)
	require.NoError(t, err)
	_, err = s.Authenticate(t.Context(), r)
	require.ErrorIs(t, err, ErrNoToken)
}

func TestHeaderAlg(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		token string
		want  string
	}{
		{name: "HS256 JWT", token: sign(t, jwt.SigningMethodHS256, []byte(secret), claims("alice", time.Hour)), want: "HS256"},
		{name: "opaque", token: "c2Vzc2lvbg", want: ""},
		{name: "two parts", token: "eyJhbGciOiJIUzI1NiJ9.e30", want: ""},
		{name: "four parts", token: "eyJhbGciOiJIUzI1NiJ9.e30.c2ln.x", want: ""},
		{name: "header not base64url", token: "***.e30.c2ln", want: ""},
		{name: "header not an object", token: "WzFd.e30.c2ln", want: ""},
		{name: "alg not a string", token: "eyJhbGciOjF9.e30.c2ln", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, headerAlg(tt.token))
		})
	}
}
