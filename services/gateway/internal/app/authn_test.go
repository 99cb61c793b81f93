package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	authv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/auth/v1"
	"github.com/bachata-chat/bachata/services/gateway/internal/config"
	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// dialToken opens /ws with tok and returns the HTTP status of the answer:
// 101 once the ready frame has arrived, else the refusal's.
func (g *gateway) dialToken(tok string) int {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(g.t.Context(), waitFor)
	defer cancel()
	u := url.URL{Scheme: "ws", Host: g.app.WSAddr().String(), Path: "/ws", RawQuery: url.Values{"device": {"phone"}, "token": {tok}}.Encode()}
	c, resp, err := websocket.Dial(ctx, u.String(), nil)
	if resp != nil && resp.Body != nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	if err != nil {
		require.NotNil(g.t, resp, "dial: %v", err)
		return resp.StatusCode
	}
	defer func() { _ = c.CloseNow() }()
	require.Equal(g.t, 1000, transport(g.t, read(g.t, c)))
	return http.StatusSwitchingProtocols
}

func TestJWKSDownAtStartDoesNotStopTheGateway(t *testing.T) {
	t.Parallel()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	point, err := key.PublicKey.Bytes()
	require.NoError(t, err)
	b64 := base64.RawURLEncoding.EncodeToString
	doc := fmt.Sprintf(`{"keys":[{"kty":"EC","kid":"k1","use":"sig","crv":"P-256","x":%q,"y":%q}]}`, b64(point[1:33]), b64(point[33:]))
	var up atomic.Bool
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !up.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, doc)
	}))
	t.Cleanup(idp.Close)

	g := startGateway(t, func(c *config.Config) {
		c.JWKSURL = idp.URL
		c.JWKSRefresh = time.Hour
	})
	es := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.RegisteredClaims{Subject: "alice", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))})
	es.Header["kid"] = "k1"
	tok, err := es.SignedString(key)
	require.NoError(t, err)

	require.Equal(t, http.StatusServiceUnavailable, g.dialToken(tok), "no key set yet: 503, not 401")
	g.dial("bob", "phone") // HS256 is not affected

	up.Store(true)
	// The refresher retries within seconds of the failure.
	require.Eventually(t, func() bool { return g.dialToken(tok) == http.StatusSwitchingProtocols }, waitFor, 50*time.Millisecond)
}

// sessions is an AuthHookService knowing one session token.
type sessions struct {
	authv1.UnimplementedAuthHookServiceServer
}

func (sessions) Authenticate(_ context.Context, req *authv1.AuthenticateRequest) (*authv1.AuthenticateResponse, error) {
	if req.GetToken() != "session-of-carol" {
		return nil, status.Error(codes.Unauthenticated, "no such session")
	}
	return &authv1.AuthenticateResponse{Username: "carol"}, nil
}

func TestAuthHookIsDialedAndClosed(t *testing.T) {
	t.Parallel()
	lis, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	authv1.RegisterAuthHookServiceServer(srv, sessions{})
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(lis) }()
	// Registered first, so it runs after the gateway has stopped: the
	// gateway's connection to the hook must be closed by then, or goleak
	// finds its goroutines.
	t.Cleanup(func() { srv.Stop(); <-served })

	g := startGateway(t, func(c *config.Config) {
		c.AuthHookAddr = lis.Addr().String()
		c.AuthHookTimeout = 2 * time.Second
	})
	require.Equal(t, http.StatusSwitchingProtocols, g.dialToken("session-of-carol"))
	require.Equal(t, http.StatusUnauthorized, g.dialToken("session-of-nobody"))
	g.dial("alice", "phone") // an HS256 JWT still goes to the secret
}
