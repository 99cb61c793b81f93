package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bachata-chat/bachata/libs/natsx"
	"github.com/bachata-chat/bachata/libs/testkit"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	eventsv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/events/v1"
	"github.com/bachata-chat/bachata/services/gateway/internal/config"
	"github.com/bachata-chat/bachata/services/gateway/internal/peertest"
	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	secret  = "app-test-secret-0123456789"
	waitFor = 10 * time.Second
)

// gateway is a running App with its peers and NATS.
type gateway struct {
	t     *testing.T
	app   *App
	cfg   config.Config
	peers *peertest.Peers
	nats  *testkit.NATS
	stop  context.CancelFunc
	done  chan error
}

// startGateway runs a gateway; mods adjust its configuration first.
func startGateway(t *testing.T, mods ...func(*config.Config)) *gateway {
	t.Helper()
	n := testkit.StartNATS(t)
	peers := peertest.Start(t)
	cfg := config.Config{
		WSAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
		GatewayID: "gw-app", ServerName: "localhost", JWTSecret: secret,
		RouterAddr: peers.Addr(), DeliveryAddr: peers.Addr(), PresenceAddr: peers.Addr(),
		NATSURL: n.URL(), NATSPrefix: "t" + strings.ReplaceAll(strings.ToLower(t.Name()), "/", "_"),
		PingInterval: time.Hour, IdleTimeout: 2 * time.Hour, MaxFrame: 65536,
		Heartbeat: 50 * time.Millisecond, WriteTimeout: 5 * time.Second, RPCTimeout: 5 * time.Second,
		QueueBytes: 1 << 20, ShutdownTimeout: waitFor, LogLevel: "warn", LogFormat: "text",
		PresenceCoalesce: time.Second, PresenceMaxWatch: 1000,
	}
	for _, m := range mods {
		m(&cfg)
	}
	require.NoError(t, cfg.Validate())
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := New(t.Context(), cfg, logger)
	require.NoError(t, err)
	ctx, stop := context.WithCancel(context.Background())
	g := &gateway{t: t, app: a, cfg: cfg, peers: peers, nats: n, stop: stop, done: make(chan error, 1)}
	go func() { g.done <- a.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-g.done:
			if err != nil {
				t.Errorf("gateway Run: %v", err)
			}
		case <-time.After(waitFor):
			t.Error("gateway did not stop")
		}
	})
	require.Eventually(t, func() bool { return g.get("/readyz") == http.StatusOK }, waitFor, 5*time.Millisecond, "ready")
	return g
}

func (g *gateway) get(path string) int {
	resp, err := http.Get("http://" + g.app.AdminAddr().String() + path)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

func (g *gateway) dial(user, device string) *websocket.Conn {
	g.t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject: user, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)),
	}).SignedString([]byte(secret))
	require.NoError(g.t, err)
	ctx, cancel := context.WithTimeout(g.t.Context(), waitFor)
	defer cancel()
	u := url.URL{Scheme: "ws", Host: g.app.WSAddr().String(), Path: "/ws", RawQuery: url.Values{"device": {device}, "token": {tok}}.Encode()}
	c, resp, err := websocket.Dial(ctx, u.String(), nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	require.NoError(g.t, err)
	g.t.Cleanup(func() { _ = c.CloseNow() })
	require.Equal(g.t, 1000, transport(g.t, read(g.t, c)))
	return c
}

func read(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	_, b, err := c.Read(ctx)
	require.NoError(t, err)
	return string(b)
}

func transport(t *testing.T, raw string) int {
	t.Helper()
	var f struct {
		Type json.RawMessage `json:"type"`
	}
	require.NoError(t, json.Unmarshal([]byte(raw), &f))
	var n int
	_ = json.Unmarshal(f.Type, &n)
	return n
}

func TestDeliveriesArriveOverNATS(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	c := g.dial("alice", "phone")
	connID := g.peers.Connects()[0].GetConnectionId()

	batch, err := proto.Marshal(&eventsv1.DeliveryBatch{Deliveries: []*eventsv1.Delivery{
		{
			Device: &commonv1.DeviceRef{User: "@alice@localhost", Device: "phone"}, ConnectionId: "stale", Attempt: 1,
			Item: &eventsv1.Delivery_Message{Message: &commonv1.Message{Id: "old", Type: "direct", Data: []byte(`{}`)}},
		},
		{
			Device: &commonv1.DeviceRef{User: "@alice@localhost", Device: "phone"}, ConnectionId: connID, Attempt: 1,
			Item: &eventsv1.Delivery_Message{Message: &commonv1.Message{
				Id: "m1", Type: "direct", TimeMs: 1, From: "@bob@localhost", Dest: "alice", Data: []byte(`{"text":"hi"}`),
			}},
		},
		{
			Device: &commonv1.DeviceRef{User: "@alice@localhost", Device: "phone"}, ConnectionId: connID, Attempt: 1,
			Item: &eventsv1.Delivery_Receipt{Receipt: &eventsv1.Receipt{Type: 300, MessageId: "mine"}},
		},
	}})
	require.NoError(t, err)
	nc := g.nats.Conn()
	subject := natsx.Subjects{Prefix: g.cfg.NATSPrefix}.GatewayDeliveries(g.cfg.GatewayID)
	require.NoError(t, nc.Publish(subject, []byte("not protobuf \xff\xff")))
	require.NoError(t, nc.Publish(subject, batch))

	require.Equal(t, `{"id":"m1","type":"direct","time":1,"from":"@bob@localhost","dest":"alice","data":{"text":"hi"}}`, read(t, c))
	require.Equal(t, `{"type":300,"data":"mine"}`, read(t, c))
	require.Eventually(t, func() bool { return len(g.peers.Acks()) == 1 }, waitFor, 5*time.Millisecond)
	require.Equal(t, []string{"mine"}, g.peers.Acks()[0].GetReceiptIds())
}

func TestHeartbeatRenewsLeaseAndReannouncesWhenUnknown(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	require.Eventually(t, func() bool { return len(g.peers.Heartbeats()) >= 2 }, waitFor, 5*time.Millisecond)
	hb := g.peers.Heartbeats()[0]
	require.Equal(t, "gw-app", hb.GetGatewayId())
	require.Equal(t, int64(150), hb.GetLeaseMs(), "lease is three heartbeats")

	g.dial("alice", "phone")
	g.dial("bob", "laptop")
	require.Len(t, g.peers.Connects(), 2)
	g.peers.SetKnown(false)
	require.Eventually(t, func() bool { return len(g.peers.Connects()) >= 4 && len(g.peers.Attaches()) >= 4 }, waitFor, 5*time.Millisecond,
		"every connection connected and attached again")
	g.peers.SetKnown(true)
	connects := g.peers.Connects()
	require.ElementsMatch(t,
		[]string{connects[0].GetConnectionId(), connects[1].GetConnectionId()},
		[]string{connects[2].GetConnectionId(), connects[3].GetConnectionId()})
}

func TestGracefulShutdownClosesClientsWith1012(t *testing.T) {
	t.Parallel()
	g := startGateway(t)
	clients := []*websocket.Conn{g.dial("alice", "phone"), g.dial("alice", "laptop"), g.dial("bob", "default")}
	require.Equal(t, http.StatusOK, g.get("/metrics"))
	g.stop()
	for _, c := range clients {
		ctx, cancel := context.WithTimeout(t.Context(), waitFor)
		_, _, err := c.Read(ctx)
		cancel()
		require.Equal(t, websocket.StatusServiceRestart, websocket.CloseStatus(err), "got %v", err)
	}
	select {
	case err := <-g.done:
		require.NoError(t, err)
	case <-time.After(waitFor):
		t.Fatal("Run did not return")
	}
	g.done <- nil // for the cleanup
	require.Len(t, g.peers.Detaches(), 3, "every close path ran before Run returned")
	require.Len(t, g.peers.Disconnects(), 3)
	releases := g.peers.Releases()
	require.Len(t, releases, 1, "the presence lease is released at the end")
	require.Equal(t, g.cfg.GatewayID, releases[0].GetGatewayId())
	require.Greater(t, len(g.peers.Heartbeats()), 0)
	var lc net.Dialer
	_, err := lc.DialContext(t.Context(), "tcp", g.app.WSAddr().String())
	require.Error(t, err, "the WebSocket listener is closed")
}

func TestNewFailsCleanlyWhenAddressIsTaken(t *testing.T) {
	t.Parallel()
	var lc net.ListenConfig
	lis, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = lis.Close() })
	cfg := config.Config{WSAddr: "127.0.0.1:0", AdminAddr: lis.Addr().String(), NATSURL: "nats://127.0.0.1:1"}
	_, err = New(t.Context(), cfg, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "listen admin")
}
