package ws

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/bachata-chat/bachata/services/gateway/internal/auth"
	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// expiringToken is an HS256 token the gateway accepts now, thanks to the
// clock skew it tolerates, and whose connection it must close about in
// after connecting: exp is in-auth.Leeway from now. A token whose exp the
// gateway did not read would stay connected for the harness's hour-long
// ping interval. closeAt is the earliest the close may come.
func expiringToken(t *testing.T, in time.Duration) (tok string, closeAt time.Time) {
	t.Helper()
	// exp is in whole seconds, rounded down; taken before the token so
	// closeAt is never later than the gateway's deadline.
	closeAt = time.Now().Add(in).Truncate(time.Second)
	return token(t, "alice", in-auth.Leeway), closeAt
}

func TestTokenExpiryClosesWith4401(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tok, closeAt := expiringToken(t, 2*time.Second)
	conn, resp, err := h.dialRaw(tok, "phone", false)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	c := &wsClient{t: t, conn: conn}
	require.Equal(t, 1000, c.next().transport())

	code, reason, frames := c.closeStatus()
	require.Equal(t, websocket.StatusCode(4401), code)
	require.Equal(t, "token expired", reason)
	require.Empty(t, frames)
	require.False(t, time.Now().Before(closeAt), "closed before the token expired")
	eventually(t, func() bool { return len(h.peers.Detaches()) == 1 }, "close path ran: delivery keeps what was not acked")
}

func TestTokenExpiryAndPingsShareTheTimer(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *Options, _ *string) {
		o.PingInterval = 50 * time.Millisecond
		// Wide enough that a slow test machine still answers in time.
		o.IdleTimeout = time.Second
	})
	tok, closeAt := expiringToken(t, 3*time.Second)
	conn, _, err := h.dialRaw(tok, "phone", false)
	require.NoError(t, err)
	c := &wsClient{t: t, conn: conn}
	require.Equal(t, 1000, c.next().transport())

	// The client answers every ping: it is alive, and still closed when
	// its token expires.
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	pings := 0
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			require.Equal(t, websocket.StatusCode(4401), websocket.CloseStatus(err), "closed with %v", err)
			break
		}
		require.Equal(t, `{"type":1001}`, string(b))
		pings++
		require.NoError(t, conn.Write(ctx, websocket.MessageText, []byte(`{"type":1002}`)))
	}
	require.False(t, time.Now().Before(closeAt), "closed before the token expired")
	require.GreaterOrEqual(t, pings, 3, "pings went on until the expiry")
}

// stubAuth answers every request with the same result.
type stubAuth struct {
	id  auth.Identity
	err error
}

func (a stubAuth) Authenticate(context.Context, *http.Request) (auth.Identity, error) {
	return a.id, a.err
}

func TestAuthenticationOutageIs503(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		err      error
		wantCode int
		wantBody string
	}{
		{name: "hook or key set down", err: fmt.Errorf("authenticate with hook: %w: deadline", auth.ErrUnavailable), wantCode: http.StatusServiceUnavailable, wantBody: "authentication unavailable"},
		{name: "refused by the hook", err: fmt.Errorf("authenticate with hook: %w: no such session", auth.ErrInvalidToken), wantCode: http.StatusUnauthorized, wantBody: "invalid token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			logger := slog.New(slog.DiscardHandler)
			// No peer is called: the request ends before the upgrade.
			srv := NewServer(context.Background(), Options{GatewayID: gatewayID, PingInterval: time.Hour, IdleTimeout: 2 * time.Hour, RPCTimeout: time.Second},
				stubAuth{err: tt.err}, Peers{}, logger, NewMetrics(prometheus.NewRegistry()))
			hs := httptest.NewServer(srv.Handler())
			t.Cleanup(hs.Close)
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, hs.URL+"/ws?device=phone", nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer opaque")
			resp, err := hs.Client().Do(req)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			require.Equal(t, tt.wantCode, resp.StatusCode)
			require.Contains(t, string(body), tt.wantBody)
			if tt.wantCode == http.StatusServiceUnavailable {
				require.Empty(t, resp.Header.Get("WWW-Authenticate"), "a 503 does not ask for other credentials")
			}
		})
	}
}
