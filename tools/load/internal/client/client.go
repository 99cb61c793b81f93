// Package client is the load tool's WebSocket client of the Bachata
// protocol. It is made cheap so that tens of thousands fit in one process
// and the client is never what limits a measurement: a connection is a
// net.Conn and one goroutine blocked reading it, with no buffer kept
// between frames (each frame is read into a buffer of its own size).
package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bachata-chat/bachata/libs/protocol"
	"github.com/gobwas/ws"
)

// MaxFrame bounds a frame from the server; the gateway's own frames are
// far smaller (its clients' limit is 64 KiB by default).
const MaxFrame = 1 << 20

// writeTimeout bounds one write: a pong or the close frame.
const writeTimeout = 10 * time.Second

// Errors of Dial and Run.
var (
	// ErrProtocol means the server sent something a Bachata gateway never
	// sends: a fragmented or oversized frame, or no ready frame first.
	ErrProtocol = errors.New("unexpected frame from the server")
	// ErrClosedHere means Close ended the connection.
	ErrClosedHere = errors.New("closed by the client")
)

// CloseError is the close frame the server ended the connection with.
type CloseError struct {
	// Code is the WebSocket close code.
	Code ws.StatusCode
	// Reason is the close reason the server gave.
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("closed by the server with %d %q", e.Code, e.Reason)
}

// Options says where and as whom to connect.
type Options struct {
	// URL is the gateway's WebSocket endpoint, ws://host:port/ws; the
	// caller checks it is allowed.
	URL *url.URL
	// Token is the client's JWT, sent as Authorization: Bearer.
	Token string
	// Source is the local address to bind; the zero Addr lets the kernel
	// choose.
	Source netip.Addr
	// ReadBuffer, when positive, reads through a buffer of this size: a
	// busy connection then reads many frames per system call, and RunFunc
	// can tell when what arrived so far is consumed. Idle connections
	// leave it zero and keep no buffer.
	ReadBuffer int
}

// Stats counts what a set of connections saw; one value is shared by all.
type Stats struct {
	// Pings is how many {"type":1001} the server sent (each was answered).
	Pings atomic.Int64
	// Frames is every other frame received after the ready frame.
	Frames atomic.Int64
}

// Conn is one client connection after the ready frame.
type Conn struct {
	nc net.Conn
	r  io.Reader     // nc, after what the handshake read past the response
	br *bufio.Reader // r when Options.ReadBuffer is set
	// Session is the session key the ready frame carried.
	Session string

	wmu    sync.Mutex
	closed atomic.Bool
}

// Dial connects, upgrades and reads the ready frame.
func Dial(ctx context.Context, o Options) (*Conn, error) {
	d := ws.Dialer{
		// The buffers only live during the handshake (and are pooled).
		ReadBufferSize:  1024,
		WriteBufferSize: 1024,
		Header:          ws.HandshakeHeaderHTTP(http.Header{"Authorization": {"Bearer " + o.Token}}),
		NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nd := net.Dialer{}
			if o.Source.IsValid() {
				nd.LocalAddr = &net.TCPAddr{IP: o.Source.AsSlice()}
			}
			return nd.DialContext(ctx, network, addr)
		},
	}
	nc, br, _, err := d.Dial(ctx, o.URL.String())
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", o.URL.Redacted(), err)
	}
	c := &Conn{nc: nc, r: nc}
	if br != nil {
		// The server's first frames came with the 101; read them first.
		// The handshake's reader is then small and kept for this
		// connection.
		c.r = io.MultiReader(br, nc)
	}
	if o.ReadBuffer > 0 {
		c.br = bufio.NewReaderSize(c.r, o.ReadBuffer)
		c.r = c.br
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetReadDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.SetReadDeadline(time.Now()) })
	defer stop()
	ready, err := c.readReady()
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	_ = nc.SetReadDeadline(time.Time{})
	c.Session = ready
	return c, nil
}

func (c *Conn) readReady() (string, error) {
	var hdr [ws.MaxHeaderSize - 2]byte
	h, p, err := c.readFrame(hdr[:])
	if err != nil {
		return "", fmt.Errorf("read ready frame: %w", err)
	}
	if h.OpCode == ws.OpClose {
		return "", closeError(p)
	}
	if h.OpCode != ws.OpText {
		return "", fmt.Errorf("%w: opcode %d before the ready frame", ErrProtocol, h.OpCode)
	}
	f, err := protocol.Decode(p)
	if err != nil {
		return "", fmt.Errorf("decode ready frame: %w", err)
	}
	t, ok := f.(*protocol.TransportMessage)
	if !ok || t.Type != protocol.TransportReady {
		return "", fmt.Errorf("%w: %q before the ready frame", ErrProtocol, p)
	}
	return t.Data, nil
}

// Run reads frames until the connection ends, answering the server's
// pings, and returns why it ended: a *CloseError, ErrClosedHere, or the
// read error.
func (c *Conn) Run(stats *Stats) error { return c.RunFunc(stats, nil, nil) }

// RunFunc is Run that hands every text frame other than a ping to onText
// (which may keep p) and, with Options.ReadBuffer set, calls drained each
// time everything received so far has been handled, before it blocks for
// more: the moment to flush writes batched by onText. Either may be nil.
func (c *Conn) RunFunc(stats *Stats, onText func(p []byte), drained func() error) error {
	var hdr [ws.MaxHeaderSize - 2]byte
	for {
		if drained != nil && c.br != nil && c.br.Buffered() == 0 {
			if err := drained(); err != nil {
				return err
			}
		}
		h, p, err := c.readFrame(hdr[:])
		if err != nil {
			if c.closed.Load() {
				return ErrClosedHere
			}
			return err
		}
		switch h.OpCode {
		case ws.OpText:
			if isPing(p) {
				stats.Pings.Add(1)
				if err := c.write(ws.OpText, protocol.AppendTransport(nil, &protocol.TransportMessage{Type: protocol.TransportPong})); err != nil {
					return err
				}
				continue
			}
			stats.Frames.Add(1)
			if onText != nil {
				onText(p)
			}
		case ws.OpPing:
			if err := c.write(ws.OpPong, p); err != nil {
				return err
			}
		case ws.OpClose:
			cerr := closeError(p)
			_ = c.write(ws.OpClose, p) // masks p in place
			_ = c.nc.Close()
			if c.closed.Load() {
				return ErrClosedHere
			}
			return cerr
		case ws.OpPong, ws.OpBinary:
			stats.Frames.Add(1)
		default:
			return fmt.Errorf("%w: opcode %d", ErrProtocol, h.OpCode)
		}
	}
}

func isPing(p []byte) bool {
	f, err := protocol.Decode(p)
	if err != nil {
		return false
	}
	t, ok := f.(*protocol.TransportMessage)
	return ok && t.Type == protocol.TransportPing
}

// Close sends a normal close frame and closes the socket without waiting
// for the server's answer: a load run ends thousands at once.
func (c *Conn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	err := c.write(ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
	return errors.Join(err, c.nc.Close())
}

// readFrame reads one whole, unfragmented frame.
func (c *Conn) readFrame(hdr []byte) (ws.Header, []byte, error) {
	h, err := ws.ReadHeaderBuffer(c.r, hdr)
	if err != nil {
		return h, nil, fmt.Errorf("read frame header: %w", err)
	}
	if !h.Fin || h.Length > MaxFrame {
		return h, nil, fmt.Errorf("%w: fragmented or %d bytes", ErrProtocol, h.Length)
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(c.r, p); err != nil {
		return h, nil, fmt.Errorf("read frame payload: %w", err)
	}
	if h.Masked {
		ws.Cipher(p, h.Mask, 0)
	}
	return h, p, nil
}

// AppendText appends payload to dst as one masked text frame, for
// WriteBatch. It masks payload in place.
func AppendText(dst, payload []byte) []byte {
	h := ws.Header{Fin: true, OpCode: ws.OpText, Length: int64(len(payload)), Masked: true, Mask: ws.NewMask()}
	ws.Cipher(payload, h.Mask, 0)
	var hb [ws.MaxHeaderSize]byte
	n := headerBytes(hb[:], h)
	return append(append(dst, hb[:n]...), payload...)
}

// WriteBatch sends frames built with AppendText in one write: many
// messages, one system call.
func (c *Conn) WriteBatch(frames []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.nc.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return fmt.Errorf("write frames: %w", err)
	}
	if _, err := c.nc.Write(frames); err != nil {
		return fmt.Errorf("write frames: %w", err)
	}
	return nil
}

// write sends one masked frame in one write.
func (c *Conn) write(op ws.OpCode, payload []byte) error {
	b, err := ws.CompileFrame(ws.MaskFrameInPlace(ws.NewFrame(op, true, payload)))
	if err != nil {
		return fmt.Errorf("compile frame: %w", err)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.nc.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	if _, err := c.nc.Write(b); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	return nil
}

func closeError(p []byte) error {
	if len(p) < 2 {
		return &CloseError{Code: ws.StatusNoStatusRcvd}
	}
	code, reason := ws.ParseCloseFrameData(p)
	return &CloseError{Code: code, Reason: reason}
}

// headerBytes writes h into b (at least ws.MaxHeaderSize long) and returns
// its length.
func headerBytes(b []byte, h ws.Header) int {
	w := bytes.NewBuffer(b[:0])
	_ = ws.WriteHeader(w, h) // a bytes.Buffer never fails
	return w.Len()
}
