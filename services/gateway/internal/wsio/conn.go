package wsio

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
)

// Sentinel errors of Send.
var (
	// ErrClosed is returned by Send once the connection is closing: the
	// frame was not queued.
	ErrClosed = errors.New("connection closed")
	// ErrQueueFull is returned by Send when the frame would push the bytes
	// waiting to be written over Options.QueueBytes: the client reads too
	// slowly. The frame was not queued; the caller decides how to close.
	ErrQueueFull = errors.New("write queue full")
)

// StatusCode is a WebSocket close code (RFC 6455 section 7.4).
type StatusCode uint16

// The close codes the gateway sends.
const (
	// CloseNormal (1000): the server is done with the connection, for
	// example because a newer one of the same device replaced it.
	CloseNormal StatusCode = 1000
	// CloseGoingAway (1001): the client was silent past the idle timeout.
	CloseGoingAway StatusCode = 1001
	// CloseProtocolError (1002): the client broke RFC 6455 framing.
	CloseProtocolError StatusCode = 1002
	// CloseNoStatus (1005) is what HandleClose reports when the client's
	// close frame carried no code; it is never sent.
	CloseNoStatus StatusCode = 1005
	// CloseAbnormal (1006) is what HandleClose reports when the socket
	// ended without a close frame; it is never sent.
	CloseAbnormal StatusCode = 1006
	// ClosePolicyViolation (1008): abuse, such as a rate limit.
	ClosePolicyViolation StatusCode = 1008
	// CloseTooBig (1009): a message exceeded Options.MaxMessage.
	CloseTooBig StatusCode = 1009
	// CloseInternalError (1011): the gateway could not set the session up;
	// the client should reconnect.
	CloseInternalError StatusCode = 1011
	// CloseServiceRestart (1012): the gateway is shutting down; the client
	// should reconnect, to any gateway.
	CloseServiceRestart StatusCode = 1012
	// CloseTryAgainLater (1013): the client read too slowly and its write
	// queue overflowed.
	CloseTryAgainLater StatusCode = 1013
	// CloseTokenExpired (4401, in the private range 4000-4999 of RFC 6455
	// section 7.4.2, echoing HTTP 401): the token the connection was
	// authenticated with has expired; the client should reconnect with a
	// fresh one.
	CloseTokenExpired StatusCode = 4401
)

// MessageType says how a message's payload is encoded.
type MessageType uint8

// The two kinds of data message.
const (
	// Text is a UTF-8 text message.
	Text MessageType = iota + 1
	// Binary is a binary message.
	Binary
)

// Options tunes every connection; one value is shared by all of them.
type Options struct {
	// MaxMessage is the largest message accepted, in bytes, after
	// reassembling fragments; a bigger one closes the connection with
	// CloseTooBig. Required.
	MaxMessage int
	// QueueBytes bounds the payload bytes waiting to be written. Required.
	QueueBytes int
	// WriteTimeout bounds one write to the socket; a peer that does not
	// read for this long loses the connection. Required.
	WriteTimeout time.Duration
	// CloseGrace is how long the server waits for the peer's close frame
	// after sending its own, so the peer reads the close code before the
	// TCP connection goes; default 2s.
	CloseGrace time.Duration
	// Poller, when set, reads the connections instead of a goroutine per
	// connection blocked in Read, so an idle connection holds no goroutine
	// (see Poller). Connections it cannot poll, without a file descriptor,
	// still get a goroutine. nil: a goroutine per connection.
	Poller *Poller
}

func (o *Options) closeGrace() time.Duration {
	if o.CloseGrace <= 0 {
		return 2 * time.Second
	}
	return o.CloseGrace
}

// Handler receives what a connection reads. Its methods are called from
// one goroutine at a time, in order.
type Handler interface {
	// HandleMessage is called with each complete data message. payload is
	// owned by the handler.
	HandleMessage(typ MessageType, payload []byte)
	// HandleClose is called once, after the socket closed, with the close
	// code that ended the connection (sent or received; CloseAbnormal when
	// the socket just ended) and the error that ended reading, if any.
	HandleClose(code StatusCode, err error)
}

// outFrame is one frame waiting to be written.
type outFrame struct {
	op      ws.OpCode
	payload []byte
	// written, when set, runs after the frame reached the socket.
	written func()
}

// Conn is one upgraded WebSocket connection. Send and Close may be called
// from any goroutine.
type Conn struct {
	nc   net.Conn
	r    io.Reader // nc, or the hijacked reader's leftovers then nc
	opts *Options
	// polled is the reading state when Options.Poller reads the
	// connection; nil when a goroutine does.
	polled *polled

	// lastRead is when the last frame arrived, Unix nanoseconds.
	lastRead atomic.Int64

	mu        sync.Mutex
	queue     []outFrame
	queued    int        // payload bytes in queue
	held      bool       // frames wait for Release
	flushing  bool       // a writer goroutine runs
	closing   bool       // a close frame is queued or the socket is gone
	code      StatusCode // the close code that ended the connection
	flushIdle chan struct{}
}

// Upgrade switches r to the WebSocket protocol. It writes the HTTP error
// itself when the handshake is bad. The returned Conn holds its outgoing
// frames until Release, so the caller decides which frame goes first.
func Upgrade(w http.ResponseWriter, r *http.Request, opts *Options) (*Conn, error) {
	u := ws.HTTPUpgrader{Timeout: opts.WriteTimeout}
	nc, rw, _, err := u.Upgrade(r, w)
	if err != nil {
		if nc != nil {
			_ = nc.Close()
		}
		return nil, fmt.Errorf("websocket upgrade: %w", err)
	}
	return newConn(nc, leftovers(rw), opts), nil
}

// newConn wraps an upgraded socket; early holds the bytes read from it
// already, past the upgrade request.
func newConn(nc net.Conn, early []byte, opts *Options) *Conn {
	c := &Conn{nc: nc, r: nc, opts: opts, held: true}
	if opts.Poller != nil {
		c.polled = opts.Poller.attach(nc)
	}
	switch {
	case c.polled != nil:
		c.polled.buf = early
	case len(early) > 0:
		c.r = io.MultiReader(bytes.NewReader(early), nc)
	}
	c.lastRead.Store(time.Now().UnixNano())
	return c
}

// leftovers returns a copy of what the HTTP server had already buffered
// past the request (a client may send frames before it sees the 101). The
// HTTP server's buffer is not kept.
func leftovers(rw *bufio.ReadWriter) []byte {
	if rw == nil || rw.Reader.Buffered() == 0 {
		return nil
	}
	b, _ := rw.Peek(rw.Reader.Buffered()) // never fails for Buffered bytes
	return bytes.Clone(b)
}

// LastRead is when the last frame (of any kind) arrived from the peer.
func (c *Conn) LastRead() time.Time { return time.Unix(0, c.lastRead.Load()) }

// Send queues a text message. written, if not nil, runs once the frame
// reached the socket, on the writer goroutine; keep it short. Send never
// blocks on the socket.
func (c *Conn) Send(payload []byte, written func()) error {
	return c.enqueue(outFrame{op: ws.OpText, payload: payload, written: written})
}

func (c *Conn) enqueue(f outFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return ErrClosed
	}
	if c.queued+len(f.payload) > c.opts.QueueBytes {
		return ErrQueueFull
	}
	c.queue = append(c.queue, f)
	c.queued += len(f.payload)
	c.startFlushLocked()
	return nil
}

// Release puts first at the head of the queue and starts writing: frames
// sent while the connection was held follow it.
func (c *Conn) Release(first []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return ErrClosed
	}
	c.queue = append(c.queue, outFrame{})
	copy(c.queue[1:], c.queue)
	c.queue[0] = outFrame{op: ws.OpText, payload: first}
	c.queued += len(first)
	c.held = false
	c.startFlushLocked()
	return nil
}

func (c *Conn) startFlushLocked() {
	if c.flushing || c.held || len(c.queue) == 0 {
		return
	}
	c.flushing = true
	go c.flush()
}

// Close starts the closing handshake: frames already queued are written
// first, then the close frame, and the peer gets CloseGrace to answer
// before the socket is closed. Frames held for Release are dropped. Only
// the first Close (or Abandon) counts.
func (c *Conn) Close(code StatusCode, reason string) {
	c.closeWith(code, reason, code, false)
}

// Abandon is Close for a peer that cannot keep up: the frames not yet
// written are dropped (the delivery service redelivers whatever was not
// acked) and only the close frame is written.
func (c *Conn) Abandon(code StatusCode, reason string) {
	c.closeWith(code, reason, code, true)
}

// closeWith queues the close frame with code and reason, after what is
// queued unless drop, and records ended as the code that ended the
// connection. Only the first call does anything.
func (c *Conn) closeWith(code StatusCode, reason string, ended StatusCode, drop bool) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	if drop || c.held {
		// Held frames go too: nothing may precede the first frame.
		c.queue, c.queued = c.queue[:0], 0
	}
	c.closing, c.code, c.held = true, ended, false
	c.queue = append(c.queue, outFrame{op: ws.OpClose, payload: closeBody(code, reason)})
	c.startFlushLocked()
	graceTimer := c.polled != nil && c.polled.served
	c.mu.Unlock()
	// Wake the reader if the peer never answers: a blocked Read times out;
	// a polled connection has a timer (Serve arms it if it comes later).
	_ = c.nc.SetReadDeadline(time.Now().Add(c.opts.closeGrace()))
	if graceTimer {
		c.armGrace()
	}
}

// closeBody is a close frame payload; the reason is cut to fit the 125
// bytes a control frame may carry.
func closeBody(code StatusCode, reason string) []byte {
	if len(reason) > 123 {
		reason = reason[:123]
	}
	return ws.NewCloseFrameBody(ws.StatusCode(code), reason)
}

// abort marks the connection closed without a handshake, when the socket
// already failed.
func (c *Conn) abort(code StatusCode) {
	c.mu.Lock()
	if !c.closing {
		c.closing, c.code = true, code
	}
	c.queue, c.queued = nil, 0
	wake := c.polled != nil && c.polled.served
	c.mu.Unlock()
	_ = c.nc.Close()
	if wake {
		// A blocked Read fails now; a polled socket, closed, is never
		// reported again, so its reader must look now.
		go c.readReady()
	}
}

// closeCode is the code that ended the connection.
func (c *Conn) closeCode() StatusCode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.code
}

func (c *Conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}
