package ws

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bachata-chat/bachata/libs/entity"
	"github.com/bachata-chat/bachata/libs/grpcx"
	deliveryv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/delivery/v1"
	presencev1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/presence/v1"
	routerv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/router/v1"
	"github.com/bachata-chat/bachata/services/gateway/internal/auth"
	"github.com/bachata-chat/bachata/services/gateway/internal/peertest"
	"github.com/bachata-chat/bachata/services/gateway/internal/wsio"
	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	secret    = "test-secret-0123456789"
	gatewayID = "gw-test"
	// waitFor bounds every wait so a broken gateway fails the test
	// instead of hanging it; it is not a performance assertion.
	waitFor = 10 * time.Second
)

// harness is a gateway endpoint on loopback with doubles of its peers.
type harness struct {
	t     testing.TB
	peers *peertest.Peers
	srv   *Server
	url   string // ws://…/ws
}

type harnessOpt func(o *Options, routerAddr *string)

func newHarness(t testing.TB, mods ...harnessOpt) *harness {
	t.Helper()
	// The gateway's default reader. Registered first, so it is closed
	// last, after the drain below has ended every connection.
	poller, err := wsio.NewPoller()
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, poller.Close()) })
	peers := peertest.Start(t)
	opts := Options{
		GatewayID:    gatewayID,
		PingInterval: time.Hour,
		IdleTimeout:  2 * time.Hour,
		RPCTimeout:   5 * time.Second,
		IO: wsio.Options{
			MaxMessage:   4096,
			QueueBytes:   1 << 20,
			WriteTimeout: 5 * time.Second,
			CloseGrace:   250 * time.Millisecond,
			Poller:       poller,
		},
		DrainBatch:    1,
		DrainInterval: time.Millisecond,
	}
	routerAddr := peers.Addr()
	for _, m := range mods {
		m(&opts, &routerAddr)
	}
	cc, err := grpcx.Dial(peers.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	routerCC := cc
	if routerAddr != peers.Addr() {
		routerCC, err = grpcx.Dial(routerAddr)
		require.NoError(t, err)
		t.Cleanup(func() { _ = routerCC.Close() })
	}
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	// The base context outlives the test body: close paths run in Cleanup.
	srv := NewServer(context.Background(), opts, auth.NewHS256([]byte(secret), "localhost", entity.ValidLocal), Peers{
		Router:   routerv1.NewRouterServiceClient(routerCC),
		Delivery: deliveryv1.NewDeliveryServiceClient(cc),
		Presence: presencev1.NewPresenceServiceClient(cc),
	}, logger, NewMetrics(prometheus.NewRegistry()))
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	// Registered after hs.Close so it runs before it: every connection's
	// close path must finish while the peers still answer.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), waitFor)
		defer cancel()
		require.NoError(t, srv.Drain(ctx))
	})
	return &harness{t: t, peers: peers, srv: srv, url: "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"}
}

func token(t testing.TB, sub string, ttl time.Duration) string {
	t.Helper()
	now := time.Now()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject: sub, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}).SignedString([]byte(secret))
	require.NoError(t, err)
	return s
}

// frame is one JSON frame as a client sees it.
type frame struct {
	ID   string          `json:"id,omitempty"`
	Type json.RawMessage `json:"type"`
	Time int64           `json:"time,omitempty"`
	From string          `json:"from,omitempty"`
	Dest string          `json:"dest,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
	Sign string          `json:"sign,omitempty"`
	raw  string
}

func (f frame) transport() int {
	var n int
	if json.Unmarshal(f.Type, &n) != nil {
		return 0
	}
	return n
}

func (f frame) dataType() string {
	var s string
	if json.Unmarshal(f.Type, &s) != nil {
		return ""
	}
	return s
}

func (f frame) dataString() string {
	var s string
	_ = json.Unmarshal(f.Data, &s)
	return s
}

// errBody is the data of an ":error" reply.
type errBody struct {
	ErrCode    int             `json:"errCode"`
	ErrText    string          `json:"errText"`
	ErrPayload json.RawMessage `json:"errPayload"`
}

func (f frame) errBody(t *testing.T) errBody {
	t.Helper()
	var b errBody
	require.NoError(t, json.Unmarshal(f.Data, &b), "error body of %s", f.raw)
	return b
}

// wsClient is one test WebSocket client.
type wsClient struct {
	t     testing.TB
	conn  *websocket.Conn
	ready frame
}

// dialRaw dials with the token in the header (query false) or the query.
func (h *harness) dialRaw(tok, device string, query bool) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(h.t.Context(), waitFor)
	defer cancel()
	q := url.Values{}
	if device != "" {
		q.Set("device", device)
	}
	hdr := http.Header{}
	switch {
	case tok == "":
	case query:
		q.Set("token", tok)
	default:
		hdr.Set("Authorization", "Bearer "+tok)
	}
	u := h.url
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	c, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: hdr})
	if c != nil {
		h.t.Cleanup(func() { _ = c.CloseNow() })
		c.SetReadLimit(1 << 20)
	}
	return c, resp, err
}

// dial connects user's device and reads the ready frame.
func (h *harness) dial(user, device string) *wsClient {
	h.t.Helper()
	c, resp, err := h.dialRaw(token(h.t, user, time.Hour), device, false)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	require.NoError(h.t, err)
	cl := &wsClient{t: h.t, conn: c}
	cl.ready = cl.next()
	require.Equal(h.t, 1000, cl.ready.transport(), "first frame must be ready: %s", cl.ready.raw)
	return cl
}

func (c *wsClient) next() frame {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), waitFor)
	defer cancel()
	typ, b, err := c.conn.Read(ctx)
	require.NoError(c.t, err)
	require.Equal(c.t, websocket.MessageText, typ)
	var f frame
	require.NoError(c.t, json.Unmarshal(b, &f), "not JSON: %q", b)
	f.raw = string(b)
	return f
}

func (c *wsClient) sendRaw(s string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), waitFor)
	defer cancel()
	require.NoError(c.t, c.conn.Write(ctx, websocket.MessageText, []byte(s)))
}

// pingPong sends a ping and expects the pong as the next frame: proof
// that nothing else was written before it.
func (c *wsClient) pingPong() {
	c.t.Helper()
	c.sendRaw(`{"type":1001}`)
	f := c.next()
	require.Equal(c.t, `{"type":1002}`, f.raw)
}

// closeStatus reads until the server closes and returns its close code
// and reason, and the data frames that came before.
func (c *wsClient) closeStatus() (websocket.StatusCode, string, []frame) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), waitFor)
	defer cancel()
	var frames []frame
	for {
		_, b, err := c.conn.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code, ce.Reason, frames
			}
			c.t.Fatalf("connection ended without a close frame: %v", err)
		}
		var f frame
		require.NoError(c.t, json.Unmarshal(b, &f))
		f.raw = string(b)
		frames = append(frames, f)
	}
}

// eventually polls cond until it holds.
func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	require.Eventually(t, cond, waitFor, 5*time.Millisecond, what)
}
