package app

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
)

// TestDrainDoesNotWaitForIdleSockets: a socket that connected but has not
// sent its request yet (a browser's preconnect, a load balancer's spare
// connection) keeps net/http's graceful Shutdown waiting until it is 5s
// old. The drain must not wait for that Shutdown: the WebSocket clients
// are closed with 1012 at once, while that socket is still open, or every
// client stays on a stopping gateway for seconds and the drain loses that
// time from its bound.
func TestDrainDoesNotWaitForIdleSockets(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	alice := g.dial("alice", "phone")
	var d net.Dialer
	idle, err := d.DialContext(t.Context(), "tcp", g.app.WSAddr().String())
	require.NoError(t, err)
	defer func() { _ = idle.Close() }() // lets Shutdown, and so Run, end

	g.stop()
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	_, _, err = alice.Read(ctx)
	require.Equal(t, websocket.StatusServiceRestart, websocket.CloseStatus(err), "got %v", err)

	// Shutdown closes the idle socket only once it is 5s old; a drain that
	// waited for Shutdown closed alice after that, and the socket's end is
	// readable here by now.
	require.NoError(t, idle.SetReadDeadline(time.Now().Add(100*time.Millisecond)))
	_, err = idle.Read(make([]byte, 1))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "alice was closed only after the idle socket (read: %v)", err)
}
