package e2e

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bachata-chat/bachata/libs/localsuite"
	authv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/auth/v1"
)

// identityProvider serves a JSON Web Key Set with one RSA key, as an
// OpenID provider does, and signs RS256 tokens with it.
type identityProvider struct {
	srv      *httptest.Server
	key      *rsa.PrivateKey
	requests atomic.Int64
}

func startIdentityProvider(t *testing.T) *identityProvider {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	b64 := base64.RawURLEncoding.EncodeToString
	doc, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "idp-1",
		"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
	}}})
	require.NoError(t, err)
	idp := &identityProvider{key: key}
	idp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		idp.requests.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(doc)
	}))
	t.Cleanup(idp.srv.Close)
	return idp
}

// token is an RS256 token for user, valid for an hour.
func (p *identityProvider) token(t *testing.T, user string) string {
	t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.RegisteredClaims{
		Subject: user, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
	})
	tok.Header["kid"] = "idp-1"
	s, err := tok.SignedString(p.key)
	require.NoError(t, err)
	return s
}

// sessionStore is an AuthHookService of a deployment with its own opaque
// session tokens.
type sessionStore struct {
	authv1.UnimplementedAuthHookServiceServer
}

func (sessionStore) Authenticate(_ context.Context, req *authv1.AuthenticateRequest) (*authv1.AuthenticateResponse, error) {
	switch req.GetToken() {
	case "session-of-bob":
		return &authv1.AuthenticateResponse{Username: "bob", ExpiresAtMs: time.Now().Add(time.Hour).UnixMilli()}, nil
	case "session-while-db-down":
		return nil, status.Error(codes.Unavailable, "session database unreachable")
	default:
		return nil, status.Error(codes.Unauthenticated, "no such session")
	}
}

// startSessionStore serves a sessionStore on loopback and returns its
// address.
func startSessionStore(t *testing.T) string {
	t.Helper()
	lis, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	authv1.RegisterAuthHookServiceServer(srv, sessionStore{})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// dialStatus opens /ws with tok and returns the HTTP status of a refusal,
// or 101 when the socket opened.
func dialStatus(t *testing.T, gatewayAddr, tok string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	u := url.URL{Scheme: "ws", Host: gatewayAddr, Path: "/ws", RawQuery: url.Values{"device": {"phone"}}.Encode()}
	conn, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}},
	})
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err == nil {
		_ = conn.CloseNow()
		return http.StatusSwitchingProtocols
	}
	require.NotNil(t, resp, "dial: %v", err)
	return resp.StatusCode
}

// TestAuthJWKSAndHookUsersExchangeDirect: alice signs in with an RS256 token
// from an identity provider's JWKS, bob with an opaque session token that
// the gateway's auth hook resolves; the HS256 secret is configured too. They
// go through the full receipt cycle 100 → delivery → 200 → 300 both ways,
// under the users their credentials named.
func TestAuthJWKSAndHookUsersExchangeDirect(t *testing.T) {
	t.Parallel()
	idp := startIdentityProvider(t)
	hookAddr := startSessionStore(t)
	e := startSuiteWith(t, func(c *localsuite.Config) {
		c.Env = append(c.Env, "BACHATA_JWKS_URL="+idp.srv.URL+"/jwks.json", "BACHATA_AUTH_HOOK_ADDR="+hookAddr)
	})

	alice := dial(t, e.gw(0), idp.token(t, "alice"), "phone")
	bob := dial(t, e.gw(0), "session-of-bob", "laptop")
	carol := dial(t, e.gw(0), token(t, secret, "carol"), "tablet") // HS256 still works beside them

	alice.direct("a1", "bob", "hi bob")
	alice.expectTransport(100, "a1")
	got := bob.expectMessage("a1")
	require.Equal(t, entity("alice"), got.From, "the RS256 token's sub")
	bob.ack("a1")
	alice.expectTransport(300, "a1")

	bob.direct("b1", "alice", "hi alice")
	bob.expectTransport(100, "b1")
	got = alice.expectMessage("b1")
	require.Equal(t, entity("bob"), got.From, "the hook's username")
	alice.ack("b1")
	bob.expectTransport(300, "b1")

	carol.direct("c1", "alice", "me too")
	carol.expectTransport(100, "c1")
	require.Equal(t, entity("carol"), alice.expectMessage("c1").From)

	require.Equal(t, http.StatusUnauthorized, dialStatus(t, e.gw(0), "session-of-nobody"), "the hook refused it")
	require.Equal(t, http.StatusServiceUnavailable, dialStatus(t, e.gw(0), "session-while-db-down"), "a hook outage is not a bad token")
	require.Positive(t, idp.requests.Load())
}

// TestTokenExpiryClosesWith4401: a connection whose HS256 token expires is
// closed with 4401 "token expired" (after the gateway's 10 s of clock-skew
// leeway); a message it had received but not acked comes again when the
// device reconnects with a fresh token, and its sender gets the 300.
func TestTokenExpiryClosesWith4401(t *testing.T) {
	t.Parallel()
	e := startSuite(t, 1)
	alice := dial(t, e.gw(0), token(t, secret, "alice"), "phone")

	now := time.Now()
	short, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject: "bob", IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(2 * time.Second)),
	}).SignedString([]byte(secret))
	require.NoError(t, err)
	bob := dial(t, e.gw(0), short, "laptop")

	alice.direct("m-exp", "bob", "read me later")
	alice.expectTransport(100, "m-exp")
	bob.expectMessage("m-exp") // not acked

	code, reason := bob.closedWith()
	require.Equal(t, websocket.StatusCode(4401), code)
	require.Equal(t, "token expired", reason)
	require.False(t, time.Now().Before(now.Add(2*time.Second).Truncate(time.Second)), "closed before exp")

	bob = dial(t, e.gw(0), token(t, secret, "bob"), "laptop")
	bob.expectMessage("m-exp")
	bob.ack("m-exp")
	alice.expectTransport(300, "m-exp")
}
