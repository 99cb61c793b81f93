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
	"sync"
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
	srv *Server
	io  *wsio.Conn
	key session.Key
	id  string // connection ID, 16 random bytes in hex
	// sessionKey is the session in force: the one presence resumed or
	// issued at set-up, then fixed for the life of the connection. It is
	// atomic because a re-announce may read it while set-up writes it.
	// resume is the key the client presented (the "session" query
	// parameter).
	sessionKey atomic.Pointer[string]
	resume     string
	device     *commonv1.DeviceRef

	// ctx ends when the gateway closes the connection, which abandons a
	// Route in progress. It does not descend from the server's base
	// context, so thousands of connections do not register with it.
	ctx    context.Context
	cancel context.CancelFunc

	// timer drives pings, the idle timeout and the token's expiry; set once
	// before it can fire. One timer does all three: a second one per
	// connection would cost memory on every idle connection.
	timer atomic.Pointer[time.Timer]
	// expiresAt is when the connection's token stops being valid, plus
	// auth.Leeway, in Unix ns; 0 means never. Set before start, read only
	// by the timer.
	expiresAt int64
	// pingedFor is the LastRead (Unix ns) of the silence the last ping was
	// sent for; only the timer callback touches it.
	pingedFor int64
	// closed is set when the close path starts; the timer stops re-arming.
	closed atomic.Bool
	// strikes counts messages refused by the rate limit; only the reader
	// touches it.
	strikes ratelimit.Strikes
	// acks are the client's 200s waiting to be sent to delivery.
	acks struct {
		mu  sync.Mutex
		ids []string
		// done is closed when the running flush ends; nil when none runs.
		done chan struct{}
	}
}

func newClient(s *Server, conn *wsio.Conn, key session.Key, resume string) (*client, error) {
	var b [16 + 32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("new session: read random: %w", err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(s.base))
	c := &client{
		srv:    s,
		io:     conn,
		key:    key,
		id:     hex.EncodeToString(b[:16]),
		resume: resume,
		device: &commonv1.DeviceRef{User: key.User, Device: key.Device},
		ctx:    ctx,
		cancel: cancel,
	}
	// Kept only if presence issues no key (an older version during a
	// rolling upgrade).
	local := base64.RawURLEncoding.EncodeToString(b[16:])
	c.sessionKey.Store(&local)
	return c, nil
}

// session is the connection's session key.
func (c *client) session() string { return *c.sessionKey.Load() }

// Key implements session.Session.
func (c *client) Key() session.Key { return c.key }

// ConnID implements session.Session.
func (c *client) ConnID() string { return c.id }

// setup registers the connection here, then with presence and delivery.
// It registers locally first so deliveries that delivery sends right
// after Attach find the connection; they are held by the socket until the
// ready frame is released, which keeps ready the first frame a client
// sees. It reports whether the session is up; if not, the connection is
// already closing with 1011 (1012 when draining, 1008 when the user has
// too many devices connected here).
func (c *client) setup() bool {
	s := c.srv
	old, replaced, err := s.reg.Add(c, s.opts.MaxUserConns)
	if err != nil {
		// Another device of the user got the last place since the check
		// before the upgrade.
		s.log.InfoContext(c.ctx, "websocket refused", c.attrs("err", err)...)
		c.close(wsio.ClosePolicyViolation, "too many connections")
		return false
	}
	if replaced {
		old.close(wsio.CloseNormal, "replaced")
	}
	if s.isDraining() {
		c.close(wsio.CloseServiceRestart, "service restart")
		return false
	}
	ctx, cancel := s.rpcContext()
	defer cancel()
	if err := c.announce(ctx, true); err != nil {
		s.log.WarnContext(ctx, "websocket session setup failed", c.attrs("err", err)...)
		c.close(wsio.CloseInternalError, "session setup failed")
		return false
	}
	return true
}

// announce tells presence the device is online here, then binds it to
// this connection in delivery, which starts sending its queue. The first
// announce, from set-up, presents the client's old key and takes the key
// presence resumed or issued; a re-announce presents the connection's key
// and never changes it, since the client already holds it.
func (c *client) announce(ctx context.Context, first bool) error {
	s := c.srv
	resume := c.session()
	if first {
		resume = c.resume
	}
	res, err := s.peers.Presence.Connect(ctx, &presencev1.ConnectRequest{
		Device: c.device, GatewayId: s.opts.GatewayID, ConnectionId: c.id, ResumeSession: resume,
	})
	if err != nil {
		s.metrics.rpcErrors.WithLabelValues("presence.Connect").Inc()
		return fmt.Errorf("presence connect: %w", err)
	}
	// A presence that issues no key (an older version during a rolling
	// upgrade) leaves the one made here.
	if key := res.GetSessionKey(); first && key != "" {
		c.sessionKey.Store(&key)
		if res.GetResumed() {
			s.metrics.sessionsResumed.Inc()
		}
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
	if err := c.io.Release(transportFrame(protocol.TransportReady, c.session())); err != nil {
		return // closed meanwhile (replaced or drained)
	}
	c.srv.metrics.framesOut.WithLabelValues(transportKind(protocol.TransportReady)).Inc()
	t := time.AfterFunc(math.MaxInt64, c.onTimer)
	c.timer.Store(t)
	t.Reset(c.wakeIn(c.srv.opts.PingInterval))
}

// onTimer pings a connection silent for the ping interval and closes one
// silent for the idle timeout. Anything the client sends counts, so an
// active client is never pinged. It closes a connection whose token has
// expired with 4401, whatever the client sends.
func (c *client) onTimer() {
	if c.closed.Load() {
		return
	}
	if c.expiresAt != 0 && time.Now().UnixNano() >= c.expiresAt {
		// Nothing is lost: what was delivered and not acked stays in
		// delivery for the next connection, with a fresh token.
		c.close(wsio.CloseTokenExpired, "token expired")
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
	c.timer.Load().Reset(c.wakeIn(next))
}

// wakeIn is when the timer must fire next: after next for pings and
// idleness, or at the token's expiry if that comes first.
func (c *client) wakeIn(next time.Duration) time.Duration {
	if c.expiresAt == 0 {
		return next
	}
	return min(next, time.Duration(c.expiresAt-time.Now().UnixNano()))
}

// send queues a frame; kind labels it in metrics. A client whose queue
// overflows is closed with 1013: it cannot keep up, and dropping its
// frames loses nothing because unacked messages stay in flight in
// delivery. It reports whether the frame was queued (written then runs
// once it reached the socket).
func (c *client) send(frame []byte, kind string, written func()) bool {
	err := c.io.Send(frame, written)
	switch {
	case err == nil:
		c.srv.metrics.framesOut.WithLabelValues(kind).Inc()
	case errors.Is(err, wsio.ErrQueueFull):
		c.srv.log.WarnContext(c.ctx, "websocket write queue full", c.attrs()...)
		c.abandon(wsio.CloseTryAgainLater, "try again later")
	}
	return err == nil
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
	if s.opts.Presence != nil {
		s.opts.Presence.Drop(c)
	}
	s.metrics.connections.Dec()
	s.metrics.closes.WithLabelValues(strconv.Itoa(int(code))).Inc()
	s.log.DebugContext(c.ctx, "websocket closed", c.attrs("code", int(code), "err", err)...)

	c.waitAcks()
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
