package storm

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/stretchr/testify/require"

	"github.com/bachata-chat/bachata/tools/load/internal/usage"
)

const secret = "storm-test-secret-sixteen"

// server refuses every third upgrade with 503 and closes every fifth
// connection it accepts with 1013 at once; the rest it keeps until the
// client closes.
func server(t *testing.T) string {
	t.Helper()
	var n, accepted atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%3 == 0 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		nc, _, _, err := ws.UpgradeHTTP(r, w)
		if err != nil {
			return
		}
		defer func() { _ = nc.Close() }()
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		if wsutil.WriteServerText(nc, []byte(`{"type":1000,"data":"k"}`)) != nil {
			return
		}
		if accepted.Add(1)%5 == 0 {
			_ = wsutil.WriteServerMessage(nc, ws.OpClose, ws.NewCloseFrameBody(ws.StatusCode(1013), "shed"))
		}
		for {
			if _, op, err := wsutil.ReadClientData(nc); err != nil || op == ws.OpClose {
				return
			}
		}
	}))
	t.Cleanup(s.Close)
	return "ws" + strings.TrimPrefix(s.URL, "http") + "/ws"
}

func TestStormCountsEveryOutcome(t *testing.T) {
	t.Parallel()
	c, err := ParseFlags([]string{"-gateways", server(t), "-secret", secret, "-rate", "300", "-duration", "500ms", "-hold", "50ms"},
		func(string) string { return "" }, &bytes.Buffer{})
	require.NoError(t, err)
	var out bytes.Buffer
	r, err := Run(t.Context(), c, &out)
	require.NoError(t, err)
	require.Equal(t, int64(150), r.Attempted, "300/s for 500ms, on a fixed schedule")
	require.Zero(t, r.Skipped)
	require.Equal(t, r.Attempted, r.Connected+r.Failures["http 503"])
	require.InDelta(t, r.Attempted/3, r.Failures["http 503"], 2)
	require.Equal(t, r.Connected, r.Disconnected+r.Ended["close 1013"])
	require.InDelta(t, r.Connected/5, r.Ended["close 1013"], 2)
	require.Equal(t, uint64(r.Connected), r.Connect.Count)
	require.Contains(t, out.String(), "http 503×")
}

func TestParseFlagsRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
	}{
		{name: "remote", args: []string{"-gateways", "ws://192.168.1.1:8080/ws", "-secret", secret}},
		{name: "no secret", args: nil},
		{name: "zero rate", args: []string{"-rate", "0", "-secret", secret}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseFlags(tc.args, func(string) string { return "" }, &bytes.Buffer{})
			require.ErrorIs(t, err, usage.ErrUsage)
		})
	}
}
