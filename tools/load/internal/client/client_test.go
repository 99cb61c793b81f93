package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/bachata-chat/bachata/tools/load/internal/loopback"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/stretchr/testify/require"
)

const waitFor = 10 * time.Second

// gateway is a stand-in for the gateway: it checks the token, sends the
// ready frame and a ping, expects the pong, then closes with 1012.
func gateway(t *testing.T, pongs chan<- string) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		nc, _, _, err := ws.UpgradeHTTP(r, w)
		if err != nil {
			return
		}
		defer func() { _ = nc.Close() }()
		_ = nc.SetDeadline(time.Now().Add(waitFor))
		if wsutil.WriteServerText(nc, []byte(`{"type":1000,"data":"key"}`)) != nil ||
			wsutil.WriteServerText(nc, []byte(`{"type":1001}`)) != nil {
			return
		}
		p, err := wsutil.ReadClientText(nc)
		if err != nil {
			return
		}
		pongs <- string(p)
		_ = wsutil.WriteServerMessage(nc, ws.OpClose, ws.NewCloseFrameBody(ws.StatusGoingAway, "restart"))
		_, _, _ = wsutil.ReadClientData(nc)
	}))
	t.Cleanup(s.Close)
	return "ws" + s.URL[len("http"):] + "/ws"
}

func TestDialAnswersPingsAndReportsClose(t *testing.T) {
	t.Parallel()
	pongs := make(chan string, 1)
	u, err := loopback.CheckURL(gateway(t, pongs), "ws")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	c, err := Dial(ctx, Options{URL: u, Token: "tok", Source: netip.MustParseAddr("127.0.0.2")})
	require.NoError(t, err)
	require.Equal(t, "key", c.Session)
	var stats Stats
	err = c.Run(&stats)
	var ce *CloseError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, ws.StatusGoingAway, ce.Code)
	require.Equal(t, `{"type":1002}`, <-pongs)
	require.EqualValues(t, 1, stats.Pings.Load())
}

func TestDialRefused(t *testing.T) {
	t.Parallel()
	u, err := loopback.CheckURL(gateway(t, make(chan string, 1)), "ws")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	_, err = Dial(ctx, Options{URL: u, Token: "wrong"})
	var se ws.StatusError
	require.True(t, errors.As(err, &se), "err: %v", err)
	require.Equal(t, http.StatusUnauthorized, int(se))
}

func TestCloseEndsRun(t *testing.T) {
	t.Parallel()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nc, _, _, err := ws.UpgradeHTTP(r, w)
		if err != nil {
			return
		}
		defer func() { _ = nc.Close() }()
		_ = nc.SetDeadline(time.Now().Add(waitFor))
		_ = wsutil.WriteServerText(nc, []byte(`{"type":1000,"data":"key"}`))
		_, _, _ = wsutil.ReadClientData(nc) // the close frame
	}))
	t.Cleanup(s.Close)
	u, err := loopback.CheckURL("ws"+s.URL[len("http"):]+"/ws", "ws")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	c, err := Dial(ctx, Options{URL: u, Token: "tok"})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- c.Run(&Stats{}) }()
	require.NoError(t, c.Close())
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrClosedHere)
	case <-time.After(waitFor):
		t.Fatal("Run did not end")
	}
}

func TestAppendTextFramesReadBack(t *testing.T) {
	t.Parallel()
	var batch []byte
	batch = AppendText(batch, []byte(`{"type":200,"data":"m1"}`))
	batch = AppendText(batch, []byte(strings.Repeat("x", 70000))) // a 64-bit length
	batch = AppendText(batch, []byte{})
	r := bytes.NewReader(batch)
	for _, want := range []string{`{"type":200,"data":"m1"}`, strings.Repeat("x", 70000), ""} {
		h, err := ws.ReadHeader(r)
		require.NoError(t, err)
		require.True(t, h.Fin)
		require.True(t, h.Masked, "a client's frames are masked")
		require.Equal(t, ws.OpText, h.OpCode)
		p := make([]byte, h.Length)
		_, err = io.ReadFull(r, p)
		require.NoError(t, err)
		ws.Cipher(p, h.Mask, 0)
		require.Equal(t, want, string(p))
	}
	require.Zero(t, r.Len())
}
