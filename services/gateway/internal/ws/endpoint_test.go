package ws

import (
	"encoding/base64"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

func TestRefusedBeforeUpgrade(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	now := time.Now()
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.RegisteredClaims{
		Subject: "alice", ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
	}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	hs512, err := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.RegisteredClaims{
		Subject: "alice", ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
	}).SignedString([]byte(secret))
	require.NoError(t, err)
	otherKey, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject: "alice", ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
	}).SignedString([]byte("another-secret-0123456789"))
	require.NoError(t, err)

	tests := []struct {
		name     string
		token    string
		query    bool
		device   string
		wantCode int
		wantBody string
	}{
		{name: "no token", wantCode: http.StatusUnauthorized, wantBody: "missing token"},
		{name: "garbage token", token: "garbage", wantCode: http.StatusUnauthorized, wantBody: "invalid token"},
		{name: "garbage token in query", token: "garbage", query: true, wantCode: http.StatusUnauthorized, wantBody: "invalid token"},
		{name: "expired", token: token(t, "alice", -time.Hour), wantCode: http.StatusUnauthorized, wantBody: "token expired"},
		{name: "alg none", token: none, wantCode: http.StatusUnauthorized, wantBody: "invalid token"},
		{name: "alg HS512", token: hs512, wantCode: http.StatusUnauthorized, wantBody: "invalid token"},
		{name: "wrong secret", token: otherKey, wantCode: http.StatusUnauthorized, wantBody: "invalid token"},
		{name: "sub not a username", token: token(t, "Alice", time.Hour), wantCode: http.StatusUnauthorized, wantBody: "invalid subject"},
		{name: "device upper case", token: token(t, "alice", time.Hour), device: "Phone", wantCode: http.StatusBadRequest, wantBody: "invalid device"},
		{name: "device with a space", token: token(t, "alice", time.Hour), device: "my phone", wantCode: http.StatusBadRequest, wantBody: "invalid device"},
		{name: "device too long", token: token(t, "alice", time.Hour), device: strings.Repeat("d", 65), wantCode: http.StatusBadRequest, wantBody: "invalid device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, resp, err := h.dialRaw(tt.token, tt.device, tt.query)
			require.Error(t, err)
			require.Nil(t, c)
			require.NotNil(t, resp)
			body, rerr := io.ReadAll(resp.Body)
			require.NoError(t, rerr)
			require.NoError(t, resp.Body.Close())
			require.Equal(t, tt.wantCode, resp.StatusCode, "no upgrade")
			require.Contains(t, string(body), tt.wantBody)
			if tt.wantCode == http.StatusUnauthorized {
				require.Equal(t, `Bearer realm="bachata"`, resp.Header.Get("WWW-Authenticate"))
			}
		})
	}
	require.Empty(t, h.peers.Connects(), "nothing refused reached presence")
	require.Empty(t, h.peers.Attaches(), "nothing refused reached delivery")
}

var (
	connIDPattern     = regexp.MustCompile(`^[0-9a-f]{32}$`)
	sessionKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
)

func TestReadyAndSessionSetup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		query      bool
		device     string
		wantDevice string
	}{
		{name: "token in header, default device", wantDevice: "default"},
		{name: "token in query", query: true, device: "phone", wantDevice: "phone"},
		{name: "device with every allowed character", device: "a-z.0_9=/x", wantDevice: "a-z.0_9=/x"},
		{name: "device of 64 bytes", device: strings.Repeat("d", 64), wantDevice: strings.Repeat("d", 64)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			c, resp, err := h.dialRaw(token(t, "alice", time.Hour), tt.device, tt.query)
			require.NoError(t, err)
			require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
			cl := &wsClient{t: t, conn: c}
			ready := cl.next()
			require.Equal(t, 1000, ready.transport(), "first frame is ready: %s", ready.raw)
			key := ready.dataString()
			require.Regexp(t, sessionKeyPattern, key, "32 random bytes, base64url without padding")
			raw, err := base64.RawURLEncoding.DecodeString(key)
			require.NoError(t, err)
			require.Len(t, raw, 32)

			connects := h.peers.Connects()
			require.Len(t, connects, 1)
			require.Equal(t, "@alice@localhost", connects[0].GetDevice().GetUser())
			require.Equal(t, tt.wantDevice, connects[0].GetDevice().GetDevice())
			require.Equal(t, gatewayID, connects[0].GetGatewayId())
			require.Regexp(t, connIDPattern, connects[0].GetConnectionId())
			attaches := h.peers.Attaches()
			require.Len(t, attaches, 1)
			require.Equal(t, connects[0].GetDevice().GetUser(), attaches[0].GetDevice().GetUser())
			require.Equal(t, tt.wantDevice, attaches[0].GetDevice().GetDevice())
			require.Equal(t, gatewayID, attaches[0].GetGatewayId())
			require.Equal(t, connects[0].GetConnectionId(), attaches[0].GetConnectionId())
			require.Equal(t, 1, h.srv.Connections())
		})
	}
}

func TestSessionKeysAndConnectionIDsDiffer(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a := h.dial("alice", "one")
	b := h.dial("alice", "two")
	require.NotEqual(t, a.ready.dataString(), b.ready.dataString())
	connects := h.peers.Connects()
	require.Len(t, connects, 2)
	require.NotEqual(t, connects[0].GetConnectionId(), connects[1].GetConnectionId())
}
