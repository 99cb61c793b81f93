package wsio

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gobwas/ws"
)

// Errors that end reading; HandleClose receives them wrapped.
var (
	// ErrProtocol means the peer broke RFC 6455 framing; the connection
	// is closed with CloseProtocolError.
	ErrProtocol = errors.New("websocket protocol error")
	// ErrTooBig means a message exceeded Options.MaxMessage; the
	// connection is closed with CloseTooBig.
	ErrTooBig = errors.New("message too big")
	// ErrPeerClosed means the peer sent a close frame.
	ErrPeerClosed = errors.New("closed by peer")
)

// maxControl is the largest control frame payload (RFC 6455 section 5.5).
const maxControl = 125

// Serve reads frames until the connection ends, handing every complete
// data message to h, then closes the socket and calls h.HandleClose. It
// answers pings and close frames itself.
//
// With a goroutine per connection (no Options.Poller) it blocks until
// then, so callers run it on a goroutine of their own. With a Poller it
// reads what has arrived, registers the socket and returns: later frames
// are read and handed to h on goroutines that exist only while the socket
// has something to read. Callers rely only on h, never on Serve's return.
func (c *Conn) Serve(h Handler) {
	if c.polled != nil {
		c.servePolled(h)
		return
	}
	c.end(h, c.readLoop(h))
}

// end finishes a connection whose reading ended with err: it closes with
// the code the error calls for, lets the close frame reach the peer,
// closes the socket and calls h.HandleClose.
func (c *Conn) end(h Handler, err error) {
	code := CloseAbnormal
	switch {
	case errors.Is(err, ErrProtocol):
		c.Close(CloseProtocolError, "protocol error")
	case errors.Is(err, ErrTooBig):
		c.Close(CloseTooBig, "message too big")
	}
	if c.isClosing() {
		// The close frame is queued; let it reach the peer.
		c.waitFlushed()
		code = c.closeCode()
		if errors.Is(err, ErrProtocol) || errors.Is(err, ErrTooBig) {
			c.linger()
		}
	} else {
		c.abort(CloseAbnormal)
	}
	_ = c.nc.Close()
	h.HandleClose(code, err)
}

// linger half-closes the socket after the close frame and reads what the
// peer still sends until it closes too or CloseGrace passes (the deadline
// Close set). Closing at once with unread bytes in the socket (the rest
// of an oversized message) would make the kernel send a reset, and the
// peer could lose the close frame and its code with it.
func (c *Conn) linger() {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	var buf [512]byte
	for {
		if _, err := c.r.Read(buf[:]); err != nil {
			return
		}
	}
}

// message is the data message being reassembled from its frames.
type message struct {
	buf []byte
	typ MessageType // 0 between messages
}

// readLoop reads frames until an error or the end of the closing
// handshake. Frames that arrive while the server is closing are read (to
// find the peer's close frame) but not handled.
func (c *Conn) readLoop(h Handler) error {
	var (
		hdr [ws.MaxHeaderSize - 2]byte
		msg message
	)
	for {
		fh, err := ws.ReadHeaderBuffer(c.r, hdr[:])
		if errors.Is(err, ws.ErrHeaderLengthMSB) {
			return fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		if err != nil {
			return fmt.Errorf("read frame header: %w", err)
		}
		c.lastRead.Store(time.Now().UnixNano())
		typ, err := c.checkHeader(fh, &msg)
		if err != nil {
			return err
		}
		if fh.OpCode.IsControl() {
			if err := c.readControl(fh); err != nil {
				return err
			}
			continue
		}
		if msg.buf, err = c.readPayload(msg.buf, fh); err != nil {
			return err
		}
		msg.typ = typ
		if fh.Fin {
			c.deliver(h, &msg)
		}
	}
}

// checkHeader validates a frame's header before its payload is read,
// against the message in progress: it returns the type of the message a
// data frame starts or continues (0 for a control frame), or the
// ErrProtocol or ErrTooBig error that ends the connection. It changes
// nothing, so a reader may check a header again once more bytes arrived.
func (c *Conn) checkHeader(fh ws.Header, msg *message) (MessageType, error) {
	if fh.Rsv != 0 || !fh.Masked {
		return 0, fmt.Errorf("%w: reserved bits or unmasked frame", ErrProtocol)
	}
	if fh.OpCode.IsControl() {
		if !fh.Fin || fh.Length > maxControl {
			return 0, fmt.Errorf("%w: fragmented or long control frame", ErrProtocol)
		}
		return 0, nil
	}
	typ := msg.typ
	switch fh.OpCode {
	case ws.OpText, ws.OpBinary:
		if msg.typ != 0 {
			return 0, fmt.Errorf("%w: new message inside a fragmented one", ErrProtocol)
		}
		typ = Text
		if fh.OpCode == ws.OpBinary {
			typ = Binary
		}
	case ws.OpContinuation:
		if msg.typ == 0 {
			return 0, fmt.Errorf("%w: continuation without a message", ErrProtocol)
		}
	default:
		return 0, fmt.Errorf("%w: reserved opcode %d", ErrProtocol, fh.OpCode)
	}
	if fh.Length > int64(c.opts.MaxMessage-len(msg.buf)) {
		return 0, fmt.Errorf("%w: more than %d bytes", ErrTooBig, c.opts.MaxMessage)
	}
	return typ, nil
}

// deliver hands a complete message to h, unless the server is closing,
// and starts the next one.
func (c *Conn) deliver(h Handler, msg *message) {
	if !c.isClosing() {
		h.HandleMessage(msg.typ, msg.buf)
	}
	*msg = message{}
}

// readPayload appends the frame's unmasked payload to buf.
func (c *Conn) readPayload(buf []byte, fh ws.Header) ([]byte, error) {
	n := len(buf)
	buf = append(buf, make([]byte, fh.Length)...)
	if _, err := io.ReadFull(c.r, buf[n:]); err != nil {
		return nil, fmt.Errorf("read frame payload: %w", err)
	}
	ws.Cipher(buf[n:], fh.Mask, 0)
	return buf, nil
}

// readControl reads a control frame's payload into a buffer of its own
// frame, not readLoop's, so an idle reader's stack stays small, and
// handles it.
func (c *Conn) readControl(fh ws.Header) error {
	var small [maxControl]byte
	p, err := c.readPayload(small[:0], fh)
	if err != nil {
		return err
	}
	return c.control(fh.OpCode, p)
}

// control handles the unmasked payload p of a ping, pong or close frame
// whose header checkHeader accepted. p is not kept.
func (c *Conn) control(op ws.OpCode, p []byte) error {
	switch op {
	case ws.OpPing:
		// A pong may be dropped if the queue is full or closing; the peer
		// then times out on its own, which is what it would do anyway.
		_ = c.enqueue(outFrame{op: ws.OpPong, payload: append([]byte(nil), p...)})
		return nil
	case ws.OpPong:
		return nil
	case ws.OpClose:
		got, err := peerCloseCode(p)
		if err != nil {
			c.Close(CloseProtocolError, "bad close frame")
			return err
		}
		// Echo the peer's code (RFC 6455 section 5.5.1) unless the server
		// was closing already; either way the handshake is complete.
		echo := got
		if echo == CloseNoStatus {
			echo = CloseNormal
		}
		c.closeWith(echo, "", got, false)
		return ErrPeerClosed
	default:
		return fmt.Errorf("%w: reserved control opcode %d", ErrProtocol, op)
	}
}

// peerCloseCode is the code of a close frame payload: CloseNoStatus when
// it has none, an ErrProtocol error when it is malformed or reserved.
func peerCloseCode(p []byte) (StatusCode, error) {
	switch len(p) {
	case 0:
		return CloseNoStatus, nil
	case 1:
		return 0, fmt.Errorf("%w: close frame of 1 byte", ErrProtocol)
	}
	code, reason := ws.ParseCloseFrameData(p)
	if err := ws.CheckCloseFrameData(code, reason); err != nil {
		return 0, fmt.Errorf("%w: bad close frame: %w", ErrProtocol, err)
	}
	return StatusCode(code), nil
}
