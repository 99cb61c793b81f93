package ws

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/bachata-chat/bachata/libs/protocol"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	deliveryv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/delivery/v1"
	presencev1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/presence/v1"
	"github.com/bachata-chat/bachata/services/gateway/internal/ratelimit"
	"github.com/bachata-chat/bachata/services/gateway/internal/session"
	"github.com/bachata-chat/bachata/services/gateway/internal/wsio"
)

// client is one authenticated connection: a session of one device.
type client struct {
	srv        *Server
	io         *wsio.Conn
	key        session.Key
	id         string // connection ID, 16 random bytes in hex
	sessionKey string // 32 random bytes, base64url without padding
	device     *commonv1.DeviceRef

	// ctx ends when the gateway closes the connection, which abandons a
	// Route in progress. It does not descend from the server's base
	// context, so thousands of connections do not register with it.
	ctx    context.Context
	cancel context.CancelFunc

	// timer drives pings and the idle timeout; set once before it can fire.
	timer atomic.Pointer[time.Timer]
	// pingedFor is the LastRead (Unix ns) of the silence the last ping was
	// sent for; only the timer callback touches it.
	pingedFor int64
	// closed is set when the close path starts; the timer stops re-arming.
	closed atomic.Bool
	// strikes counts messages refused by the rate limit; only the reader
	// touches it.
	strikes ratelimit.Strikes
}

func newClient(s *Server, conn *wsio.Conn, key session.Key) (*client, error) {
	var b [16 + 32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("new session: read random: %w", err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(s.base))
	return &client{
		srv:        s,
		io:         conn,
		key:        key,
		id:         hex.EncodeToString(b[:16]),
		sessionKey: base64.RawURLEncoding.EncodeToString(b[16:]),
		device:     &commonv1.DeviceRef{User: key.User, Device: key.Device},
		ctx:        ctx,
		cancel:     cancel,
	}, nil
}

// Key implements session.Session.
func (c *client) Key() session.Key { return c.key }

// ConnID implements session.Session.
func (c *client) ConnID() string { return c.id }

// setup registers the connection here, then with presence and delivery.
// It registers locally first so deliveries that delivery sends right
// after Attach find the connection; they are held by the socket until the
// ready frame is released, which keeps ready the first frame a client
// sees. It reports whether the session is up; if not, the connection is
// already closing with 1011 (or 1012 when draining).
func (c *client) setup() bool {
	s := c.srv
	if old, ok := s.reg.Add(c); ok {
		old.close(wsio.CloseNormal, "replaced")
	}
	if s.isDraining() {
		c.close(wsio.CloseServiceRestart, "service restart")
		return false
	}
	ctx, cancel := s.rpcContext()
	defer cancel()
	if err := c.announce(ctx); err != nil {
		s.log.WarnContext(ctx, "websocket session setup failed", c.attrs("err", err)...)
		c.close(wsio.CloseInternalError, "session setup failed")
		return false
	}
	return true
}

// announce tells presence the device is online here, then binds it to
// this connection in delivery, which starts sending its queue.
func (c *client) announce(ctx context.Context) error {
	s := c.srv
	if _, err := s.peers.Presence.Connect(ctx, &presencev1.ConnectRequest{
		Device: c.device, GatewayId: s.opts.GatewayID, ConnectionId: c.id,
	}); err != nil {
		s.metrics.rpcErrors.WithLabelValues("presence.Connect").Inc()
		return fmt.Errorf("presence connect: %w", err)
	}
	if _, err := s.peers.Delivery.Attach(ctx, &deliveryv1.AttachRequest{
		Device: c.device, GatewayId: s.opts.GatewayID, ConnectionId: c.id,
	}); err != nil {
		s.metrics.rpcErrors.WithLabelValues("delivery.Attach").Inc()
		return fmt.Errorf("delivery attach: %w", err)
	}
	return nil
}

// start writes the ready frame, then whatever was held behind it, and
// starts the ping timer.
func (c *client) start() {
	if err := c.io.Release(transportFrame(protocol.TransportReady, c.sessionKey)); err != nil {
		return // closed meanwhile (replaced or drained)
	}
	c.srv.metrics.framesOut.WithLabelValues(transportKind(protocol.TransportReady)).Inc()
	t := time.AfterFunc(math.MaxInt64, c.onTimer)
	c.timer.Store(t)
	t.Reset(c.srv.opts.PingInterval)
}

// onTimer pings a connection silent for the ping interval and closes one
// silent for the idle timeout. Anything the client sends counts, so an
// active client is never pinged.
func (c *client) onTimer() {
	if c.closed.Load() {
		return
	}
	opts := &c.srv.opts
	last := c.io.LastRead()
	idle := time.Since(last)
	var next time.Duration
	switch {
	case idle >= opts.IdleTimeout:
		c.close(wsio.CloseGoingAway, "idle timeout")
		return
	case idle >= opts.PingInterval:
		if c.pingedFor != last.UnixNano() {
			c.pingedFor = last.UnixNano()
			c.send(transportFrame(protocol.TransportPing, ""), transportKind(protocol.TransportPing), nil)
		}
		next = opts.IdleTimeout - idle
	default:
		next = opts.PingInterval - idle
	}
	c.timer.Load().Reset(next)
}

// send queues a frame; kind labels it in metrics. A client whose queue
// overflows is closed with 1013: it cannot keep up, and dropping its
// frames loses nothing because unacked messages stay in flight in
// delivery.
func (c *client) send(frame []byte, kind string, written func()) {
	err := c.io.Send(frame, written)
	switch {
	case err == nil:
		c.srv.metrics.framesOut.WithLabelValues(kind).Inc()
	case errors.Is(err, wsio.ErrQueueFull):
		c.srv.log.WarnContext(c.ctx, "websocket write queue full", c.attrs()...)
		c.abandon(wsio.CloseTryAgainLater, "try again later")
	}
}

// close starts closing the connection from the gateway's side.
func (c *client) close(code wsio.StatusCode, reason string) {
	c.cancel()
	c.io.Close(code, reason)
}

// abandon is close without writing what is still queued.
func (c *client) abandon(code wsio.StatusCode, reason string) {
	c.cancel()
	c.io.Abandon(code, reason)
}

// HandleClose implements wsio.Handler: the close path. It unregisters the
// connection and tells presence and delivery it is gone, with its
// connection ID so a newer connection of the device is left alone. It
// runs to the end during shutdown: its calls derive from the server's
// base context, not the connection's.
func (c *client) HandleClose(code wsio.StatusCode, err error) {
	s := c.srv
	c.closed.Store(true)
	if t := c.timer.Load(); t != nil {
		t.Stop()
	}
	c.cancel()
	s.reg.Remove(c)
	s.metrics.connections.Dec()
	s.metrics.closes.WithLabelValues(strconv.Itoa(int(code))).Inc()
	s.log.DebugContext(c.ctx, "websocket closed", c.attrs("code", int(code), "err", err)...)

	c.detach()
	s.conns.Done()
}

// detach tells presence and delivery the connection is gone, each call
// with its own bound so a slow presence does not cut delivery's short.
func (c *client) detach() {
	s := c.srv
	ctx, cancel := s.rpcContext()
	_, err := s.peers.Presence.Disconnect(ctx, &presencev1.DisconnectRequest{
		Device: c.device, GatewayId: s.opts.GatewayID, ConnectionId: c.id,
	})
	cancel()
	if err != nil {
		s.metrics.rpcErrors.WithLabelValues("presence.Disconnect").Inc()
		s.log.WarnContext(s.base, "presence disconnect failed", c.attrs("err", err)...)
	}
	ctx, cancel = s.rpcContext()
	_, err = s.peers.Delivery.Detach(ctx, &deliveryv1.DetachRequest{Device: c.device, ConnectionId: c.id})
	cancel()
	if err != nil {
		s.metrics.rpcErrors.WithLabelValues("delivery.Detach").Inc()
		s.log.WarnContext(s.base, "delivery detach failed", c.attrs("err", err)...)
	}
}

// attrs are the log attributes naming this connection, then extra.
func (c *client) attrs(extra ...any) []any {
	return append([]any{"user", c.key.User, "device", c.key.Device, "conn", c.id}, extra...)
}
