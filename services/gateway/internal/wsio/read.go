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
// answers pings and close frames itself. It blocks until then, so callers
// run it on a goroutine of its own; a later epoll-based reader would
// return at once and call h from its own goroutines, which is why callers
// must rely only on h, not on Serve's return.
func (c *Conn) Serve(h Handler) {
	err := c.readLoop(h)
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

// readLoop reads frames until an error or the end of the closing
// handshake. Frames that arrive while the server is closing are read (to
// find the peer's close frame) but not handled.
func (c *Conn) readLoop(h Handler) error {
	var (
		hdr     [ws.MaxHeaderSize - 2]byte
		msg     []byte // the message being reassembled
		msgType MessageType
	)
	for {
		fh, err := ws.ReadHeaderBuffer(c.r, hdr[:])
		if err != nil {
			return fmt.Errorf("read frame header: %w", err)
		}
		c.lastRead.Store(time.Now().UnixNano())
		if fh.Rsv != 0 || !fh.Masked {
			return fmt.Errorf("%w: reserved bits or unmasked frame", ErrProtocol)
		}
		if fh.OpCode.IsControl() {
			if err := c.readControl(fh); err != nil {
				return err
			}
			continue
		}
		switch fh.OpCode {
		case ws.OpText, ws.OpBinary:
			if msgType != 0 {
				return fmt.Errorf("%w: new message inside a fragmented one", ErrProtocol)
			}
			msgType = Text
			if fh.OpCode == ws.OpBinary {
				msgType = Binary
			}
		case ws.OpContinuation:
			if msgType == 0 {
				return fmt.Errorf("%w: continuation without a message", ErrProtocol)
			}
		default:
			return fmt.Errorf("%w: reserved opcode %d", ErrProtocol, fh.OpCode)
		}
		if fh.Length > int64(c.opts.MaxMessage-len(msg)) {
			return fmt.Errorf("%w: more than %d bytes", ErrTooBig, c.opts.MaxMessage)
		}
		msg, err = c.readPayload(msg, fh)
		if err != nil {
			return err
		}
		if !fh.Fin {
			continue
		}
		if !c.isClosing() {
			h.HandleMessage(msgType, msg)
		}
		msg, msgType = nil, 0
	}
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

// readControl handles a ping, pong or close frame.
func (c *Conn) readControl(fh ws.Header) error {
	if !fh.Fin || fh.Length > maxControl {
		return fmt.Errorf("%w: fragmented or long control frame", ErrProtocol)
	}
	var small [maxControl]byte
	p, err := c.readPayload(small[:0], fh)
	if err != nil {
		return err
	}
	switch fh.OpCode {
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
		return fmt.Errorf("%w: reserved control opcode %d", ErrProtocol, fh.OpCode)
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
