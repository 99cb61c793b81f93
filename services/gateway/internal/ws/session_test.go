package ws

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	deliveryv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/delivery/v1"
	eventsv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/events/v1"
	presencev1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/presence/v1"
	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestReadyIsFirstEvenWhenDeliveriesComeDuringAttach(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// Delivery publishes the queue while Attach is still running: the
	// gateway must hold it behind the ready frame.
	h.peers.SetOnAttach(func(req *deliveryv1.AttachRequest) {
		h.srv.Deliver(&eventsv1.DeliveryBatch{Deliveries: []*eventsv1.Delivery{{
			Device: req.GetDevice(), ConnectionId: req.GetConnectionId(), Attempt: 1,
			Item: &eventsv1.Delivery_Message{Message: &commonv1.Message{
				Id: "queued-1", Type: "direct", TimeMs: 1700000000000, From: "@bob@localhost", Dest: "@alice@localhost", Data: []byte(`{"text":"hi"}`),
			}},
		}}})
	})
	c := h.dial("alice", "phone") // fails unless ready is first
	f := c.next()
	require.Equal(t, `{"id":"queued-1","type":"direct","time":1700000000000,"from":"@bob@localhost","dest":"@alice@localhost","data":{"text":"hi"}}`, f.raw)
}

func TestClientPingIsAnsweredAtOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.dial("alice", "phone")
	for range 3 {
		c.pingPong()
	}
	c.sendRaw(`{"type":1002}`) // a pong is liveness only: nothing comes back
	c.pingPong()
}

func TestServerPingsIdleConnectionAndClosesDeadOne(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *Options, _ *string) {
		o.PingInterval = 50 * time.Millisecond
		o.IdleTimeout = 200 * time.Millisecond
	})
	c := h.dial("alice", "phone")
	// The client never answers: one ping, then the close.
	start := time.Now()
	code, reason, frames := c.closeStatus()
	require.Equal(t, websocket.StatusGoingAway, code)
	require.Equal(t, "idle timeout", reason)
	require.Len(t, frames, 1, "one ping per silence")
	require.Equal(t, `{"type":1001}`, frames[0].raw)
	require.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond, "not closed before the idle timeout")
	eventually(t, func() bool { return len(h.peers.Detaches()) == 1 }, "close path ran")
}

func TestClientAnsweringPingsStaysConnected(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *Options, _ *string) {
		o.PingInterval = 50 * time.Millisecond
		o.IdleTimeout = 400 * time.Millisecond
	})
	c := h.dial("alice", "phone")
	start := time.Now()
	pings := 0
	for time.Since(start) < time.Second {
		f := c.next()
		require.Equal(t, `{"type":1001}`, f.raw)
		pings++
		c.sendRaw(`{"type":1002}`)
	}
	require.GreaterOrEqual(t, pings, 5)
	c.pingPong()
	require.Empty(t, h.peers.Detaches(), "still connected well past the idle timeout")
}

func TestNewerConnectionOfDeviceReplacesOlder(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	first := h.dial("alice", "phone")
	second := h.dial("alice", "phone")
	code, reason, _ := first.closeStatus()
	require.Equal(t, websocket.StatusNormalClosure, code)
	require.Equal(t, "replaced", reason)

	connects := h.peers.Connects()
	require.Len(t, connects, 2)
	oldID, newID := connects[0].GetConnectionId(), connects[1].GetConnectionId()
	eventually(t, func() bool { return len(h.peers.Detaches()) == 1 }, "old connection detached")
	require.Equal(t, oldID, h.peers.Detaches()[0].GetConnectionId(), "only the old connection is detached")
	require.Equal(t, oldID, h.peers.Disconnects()[0].GetConnectionId())
	require.Equal(t, 1, h.srv.Connections())

	// The newer connection still receives its deliveries.
	second.pingPong()
	h.srv.Deliver(batchFor("@alice@localhost", "phone", newID, message("m1")))
	require.Equal(t, "m1", second.next().ID)
	// Another device of the same user is not affected.
	other := h.dial("alice", "laptop")
	other.pingPong()
	second.pingPong()
}

func TestCloseRunsDetachAndDisconnect(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.dial("alice", "phone")
	connID := h.peers.Connects()[0].GetConnectionId()
	require.NoError(t, c.conn.Close(websocket.StatusNormalClosure, "bye"))
	eventually(t, func() bool { return len(h.peers.Detaches()) == 1 && len(h.peers.Disconnects()) == 1 }, "close path ran")
	d := h.peers.Detaches()[0]
	require.Equal(t, connID, d.GetConnectionId())
	require.Equal(t, "@alice@localhost", d.GetDevice().GetUser())
	require.Equal(t, "phone", d.GetDevice().GetDevice())
	dc := h.peers.Disconnects()[0]
	require.Equal(t, connID, dc.GetConnectionId())
	require.Equal(t, gatewayID, dc.GetGatewayId())
	require.Equal(t, "phone", dc.GetDevice().GetDevice())
	eventually(t, func() bool { return h.srv.Connections() == 0 }, "unregistered")
}

func TestDroppedConnectionRunsClosePath(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.dial("alice", "phone")
	require.NoError(t, c.conn.CloseNow())
	eventually(t, func() bool { return len(h.peers.Detaches()) == 1 && len(h.peers.Disconnects()) == 1 }, "close path ran")
}

func TestSetupFailureClosesWith1011(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(h *harness)
	}{
		{name: "presence connect fails", setup: func(h *harness) {
			h.peers.SetConnectErr(status.Error(codes.Internal, "boom"))
		}},
		{name: "delivery attach fails", setup: func(h *harness) {
			h.peers.SetAttachErr(status.Error(codes.FailedPrecondition, "boom"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			tt.setup(h)
			c, resp, err := h.dialRaw(token(t, "alice", time.Hour), "phone", false)
			require.NoError(t, err)
			require.Equal(t, 101, resp.StatusCode)
			cl := &wsClient{t: t, conn: c}
			code, reason, frames := cl.closeStatus()
			require.Equal(t, websocket.StatusInternalError, code)
			require.Equal(t, "session setup failed", reason)
			require.Empty(t, frames, "no ready frame for a session that is not set up")
			eventually(t, func() bool { return len(h.peers.Detaches()) == 1 }, "close path ran")
		})
	}
}

func TestDrainClosesEveryConnectionWith1012(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	clients := []*wsClient{h.dial("alice", "phone"), h.dial("alice", "laptop"), h.dial("bob", "default")}
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	drained := make(chan error, 1)
	go func() { drained <- h.srv.Drain(ctx) }()
	for _, c := range clients {
		code, reason, _ := c.closeStatus()
		require.Equal(t, websocket.StatusServiceRestart, code)
		require.Equal(t, "service restart", reason)
	}
	require.NoError(t, <-drained)
	require.Len(t, h.peers.Detaches(), 3, "Drain returns after every close path")
	require.Len(t, h.peers.Disconnects(), 3)
	ids := map[string]bool{}
	for _, d := range h.peers.Detaches() {
		ids[d.GetConnectionId()] = true
	}
	for _, c := range h.peers.Connects() {
		require.True(t, ids[c.GetConnectionId()], "connection %s detached", c.GetConnectionId())
	}

	_, resp, err := h.dialRaw(token(t, "carol", time.Hour), "", false)
	require.Error(t, err)
	require.Equal(t, 503, resp.StatusCode, "no new connections while draining")
	require.NoError(t, resp.Body.Close())
}

func TestReannounceConnectsAndAttachesEveryConnection(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.dial("alice", "phone")
	h.dial("bob", "default")
	require.NoError(t, h.srv.Reannounce(t.Context()))
	connects, attaches := h.peers.Connects(), h.peers.Attaches()
	require.Len(t, connects, 4)
	require.Len(t, attaches, 4)
	require.ElementsMatch(t,
		[]string{connects[0].GetConnectionId(), connects[1].GetConnectionId()},
		[]string{connects[2].GetConnectionId(), connects[3].GetConnectionId()},
		"the same connections again")
}

// batchFor is a DeliveryBatch for one connection.
func batchFor(user, device, connID string, items ...func(*eventsv1.Delivery)) *eventsv1.DeliveryBatch {
	b := &eventsv1.DeliveryBatch{}
	for _, it := range items {
		d := &eventsv1.Delivery{Device: &commonv1.DeviceRef{User: user, Device: device}, ConnectionId: connID, Attempt: 1}
		it(d)
		b.Deliveries = append(b.Deliveries, d)
	}
	return b
}

func message(id string) func(*eventsv1.Delivery) {
	return func(d *eventsv1.Delivery) {
		d.Item = &eventsv1.Delivery_Message{Message: &commonv1.Message{
			Id: id, Type: "direct", TimeMs: 1700000000000, From: "@bob@localhost", Dest: "alice", Data: []byte(`{"text":"hi"}`),
		}}
	}
}

func receipt(typ int32, id string) func(*eventsv1.Delivery) {
	return func(d *eventsv1.Delivery) {
		d.Item = &eventsv1.Delivery_Receipt{Receipt: &eventsv1.Receipt{Type: typ, MessageId: id}}
	}
}

func TestSessionKeyComesFromPresenceAndTheOldOneIsPresented(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const issued = "aW3sXL2-issued-by-presence-0000000000000000"
	h.peers.SetConnectResponse(&presencev1.ConnectResponse{SessionKey: issued, Resumed: true})

	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	q := url.Values{"device": {"phone"}, "session": {"the-key-held-before"}, "token": {token(t, "alice", time.Hour)}}
	conn, _, err := websocket.Dial(ctx, h.url+"?"+q.Encode(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.CloseNow() })
	c := &wsClient{t: t, conn: conn}
	ready := c.next()
	require.Equal(t, 1000, ready.transport())
	require.Equal(t, issued, ready.dataString(), "the ready frame carries the key presence answered")

	connects := h.peers.Connects()
	require.Len(t, connects, 1)
	require.Equal(t, "the-key-held-before", connects[0].GetResumeSession())

	// A re-announce presents the connection's key and keeps it.
	h.peers.SetConnectResponse(&presencev1.ConnectResponse{SessionKey: "another"})
	require.NoError(t, h.srv.Reannounce(t.Context()))
	connects = h.peers.Connects()
	require.Len(t, connects, 2)
	require.Equal(t, issued, connects[1].GetResumeSession())
	c.sendRaw(`{"id":"h1","type":"handshake","data":{"title":"Hello world!","session":"` + issued + `"}}`)
	require.Eventually(t, func() bool { return len(h.peers.Routes()) == 1 }, waitFor, 10*time.Millisecond)
	require.Equal(t, issued, h.peers.Routes()[0].GetSender().GetSessionKey(), "the router still sees the key the client holds")
}

func TestOversizedSessionParameterIsNotPassedOn(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	q := url.Values{"session": {strings.Repeat("k", MaxSessionKey+1)}, "token": {token(t, "alice", time.Hour)}}
	conn, _, err := websocket.Dial(ctx, h.url+"?"+q.Encode(), nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.CloseNow() })
	(&wsClient{t: t, conn: conn}).next()
	require.Empty(t, h.peers.Connects()[0].GetResumeSession())
}
