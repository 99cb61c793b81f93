package ws

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/bachata-chat/bachata/services/gateway/internal/origin"
)

// handshakeStatus dials with the given Origin (none when empty) and returns
// the HTTP status and body of a refused handshake, or 101.
func (h *harness) handshakeStatus(user, device, originHeader string) (int, string) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.t.Context(), waitFor)
	defer cancel()
	hdr := http.Header{"Authorization": {"Bearer " + token(h.t, user, time.Hour)}}
	if originHeader != "" {
		hdr.Set("Origin", originHeader)
	}
	c, resp, err := websocket.Dial(ctx, h.url+"?device="+device, &websocket.DialOptions{HTTPHeader: hdr})
	if err == nil {
		h.t.Cleanup(func() { _ = c.CloseNow() })
		(&wsClient{t: h.t, conn: c}).next() // ready
		return resp.StatusCode, ""
	}
	require.NotNil(h.t, resp, "dial: %v", err)
	body, rerr := io.ReadAll(resp.Body)
	require.NoError(h.t, rerr)
	require.NoError(h.t, resp.Body.Close())
	return resp.StatusCode, string(body)
}

func TestDevicesPerUserAreLimited(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *Options, _ *string) { o.MaxUserConns = 2 })
	phone := h.dial("alice", "phone")
	h.dial("alice", "laptop")

	status, body := h.handshakeStatus("alice", "tablet", "")
	require.Equal(t, http.StatusTooManyRequests, status)
	require.Contains(t, body, "too many connections")
	require.Len(t, h.peers.Connects(), 2, "a refused device never reaches presence")

	// Another user is not affected, and a connected device may reconnect:
	// the new connection replaces the old one.
	h.dial("bob", "tablet")
	h.dial("alice", "phone")
	code, reason, _ := phone.closeStatus()
	require.Equal(t, websocket.StatusNormalClosure, code)
	require.Equal(t, "replaced", reason)

	// Once a device leaves, another may come.
	require.Equal(t, 1, h.srv.Kick("@alice@localhost", "laptop"))
	eventually(t, func() bool { return len(h.srv.reg.User("@alice@localhost")) == 1 }, "the kicked laptop is unregistered")
	h.dial("alice", "tablet")
}

func TestOriginsAreChecked(t *testing.T) {
	t.Parallel()
	policy, err := origin.Parse("https://chat.example.com")
	require.NoError(t, err)
	h := newHarness(t, func(o *Options, _ *string) { o.Origins = policy })

	code, body := h.handshakeStatus("alice", "phone", "https://evil.example.net")
	require.Equal(t, http.StatusForbidden, code)
	require.Contains(t, body, "origin not allowed")
	require.Empty(t, h.peers.Connects())

	code, _ = h.handshakeStatus("alice", "phone", "https://chat.example.com")
	require.Equal(t, http.StatusSwitchingProtocols, code)
	code, _ = h.handshakeStatus("alice", "laptop", "")
	require.Equal(t, http.StatusSwitchingProtocols, code, "clients that are not browsers send no Origin")
}
