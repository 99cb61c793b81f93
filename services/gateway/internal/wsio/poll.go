package wsio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/gobwas/ws"
)

// readBufSize is the read buffer a polled connection borrows while it
// reads; it goes back to the pool as soon as the socket has nothing more.
const readBufSize = 4 << 10

var readBufs = sync.Pool{New: func() any { return new([readBufSize]byte) }}

// ErrPollerUnsupported is returned by NewPoller where there is no epoll
// (anywhere but Linux); callers then read with a goroutine per connection.
var ErrPollerUnsupported = errors.New("the epoll reader needs Linux")

// errWouldBlock is a non-blocking read that found nothing to read.
var errWouldBlock = errors.New("nothing to read")

// polled is the reading state of a connection a Poller reads.
//
// Lock order: polled.mu, then Conn.mu, then Poller.mu.
type polled struct {
	poller *Poller
	raw    syscall.RawConn

	// served and grace are guarded by Conn.mu. served is set by Serve;
	// grace is the CloseGrace timer, armed by whichever of Serve and the
	// first close comes second.
	served bool
	grace  *time.Timer

	// mu is held while the connection reads, so frames are handled one at
	// a time, in order, whichever goroutine the poller woke.
	mu    sync.Mutex
	id    uint64  // the poller's key, set by add
	h     Handler // set by Serve
	ended bool    // end was called or is about to be
	// buf holds the start of a frame not complete yet (or nothing), in
	// pooled when that is a buffer of the pool.
	buf    []byte
	pooled *[readBufSize]byte
	// want is the length of the incomplete frame in buf once its header
	// is complete, else 0.
	want int
	msg  message
}

// servePolled is Serve for a polled connection: it registers the socket,
// reads what has arrived (the upgrade's leftovers first) and arms it.
func (c *Conn) servePolled(h Handler) {
	p := c.polled
	p.mu.Lock()
	p.h = h
	c.mu.Lock()
	p.served = true
	closing := c.closing
	c.mu.Unlock()
	err := p.poller.add(c)
	if err == nil {
		err = c.readAvailable()
	}
	err = c.afterRead(err)
	p.mu.Unlock()
	if err != nil {
		c.endPolled(err)
		return
	}
	if closing {
		c.armGrace()
	}
}

// readReady runs on a goroutine of its own when the poller saw the socket
// readable (or an abort needs the reader to notice the closed socket).
func (c *Conn) readReady() {
	p := c.polled
	p.mu.Lock()
	if p.ended {
		p.mu.Unlock()
		return
	}
	err := c.afterRead(c.readAvailable())
	p.mu.Unlock()
	if err != nil {
		c.endPolled(err)
	}
}

// afterRead re-arms the socket after a read that ended with err == nil,
// or marks the connection ended. It returns the error the caller must end
// the connection with, nil if it goes on. Called with polled.mu held.
func (c *Conn) afterRead(err error) error {
	p := c.polled
	if err == nil {
		if err = p.poller.arm(c); err == nil {
			return nil
		}
	}
	p.ended = true
	p.poller.remove(c)
	p.dropBuf()
	return err
}

// endPolled ends a polled connection with err; the reading state is
// already ended.
func (c *Conn) endPolled(err error) {
	c.mu.Lock()
	t := c.polled.grace
	c.mu.Unlock()
	if t != nil {
		t.Stop()
	}
	c.end(c.polled.h, err)
}

// armGrace starts the CloseGrace timer of a polled connection: the peer
// has that long to answer the close frame. A goroutine reader gets the
// same bound from the read deadline Close sets.
func (c *Conn) armGrace() {
	t := time.AfterFunc(c.opts.closeGrace(), c.graceExpired)
	c.mu.Lock()
	c.polled.grace = t
	c.mu.Unlock()
}

func (c *Conn) graceExpired() {
	p := c.polled
	p.mu.Lock()
	if p.ended {
		p.mu.Unlock()
		return
	}
	p.ended = true
	p.poller.remove(c)
	p.dropBuf()
	p.mu.Unlock()
	c.end(p.h, fmt.Errorf("read frame header: %w", os.ErrDeadlineExceeded))
}

// readAvailable reads and handles frames until the socket has nothing
// more to read. Called with polled.mu held.
func (c *Conn) readAvailable() error {
	p := c.polled
	for {
		if len(p.buf) > 0 {
			rest, want, err := c.consume(p.h, &p.msg, p.buf)
			if err != nil {
				return err
			}
			p.buf = p.buf[:copy(p.buf[:cap(p.buf)], rest)]
			p.want = want
		}
		p.makeRoom()
		n, err := p.poller.read(c, p.buf[len(p.buf):cap(p.buf)])
		if errors.Is(err, errWouldBlock) {
			p.keepBuf()
			return nil
		}
		if err != nil {
			return fmt.Errorf("read frame: %w", err)
		}
		p.buf = p.buf[:len(p.buf)+n]
	}
}

// consume handles every complete frame at the start of b and returns the
// rest: the start of a frame not complete yet, with that frame's length
// when its header is complete (else 0). Payloads are unmasked in place; a
// message's bytes are copied out, so b can be reused.
func (c *Conn) consume(h Handler, msg *message, b []byte) ([]byte, int, error) {
	for len(b) > 0 {
		fh, hn, err := parseHeader(b)
		if err != nil {
			return nil, 0, err
		}
		if hn == 0 {
			return b, 0, nil
		}
		c.lastRead.Store(time.Now().UnixNano())
		typ, err := c.checkHeader(fh, msg)
		if err != nil {
			return nil, 0, err
		}
		end := hn + int(fh.Length) // checkHeader bounded Length by MaxMessage
		if len(b) < end {
			return b, end, nil
		}
		payload := b[hn:end]
		ws.Cipher(payload, fh.Mask, 0)
		b = b[end:]
		if fh.OpCode.IsControl() {
			if err := c.control(fh.OpCode, payload); err != nil {
				return nil, 0, err
			}
			continue
		}
		msg.buf = append(msg.buf, payload...)
		msg.typ = typ
		if fh.Fin {
			c.deliver(h, msg)
		}
	}
	return b, 0, nil
}

// parseHeader parses the frame header at the start of b, the way
// ws.ReadHeaderBuffer reads one. It returns the header's length, or 0 when
// b holds only part of it.
func parseHeader(b []byte) (ws.Header, int, error) {
	var h ws.Header
	if len(b) < 2 {
		return h, 0, nil
	}
	h.Fin = b[0]&0x80 != 0
	h.Rsv = (b[0] & 0x70) >> 4
	h.OpCode = ws.OpCode(b[0] & 0x0f)
	h.Masked = b[1]&0x80 != 0
	n := 2
	switch l := b[1] & 0x7f; l {
	case 126:
		n += 2
	case 127:
		n += 8
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		n += 4
	}
	if len(b) < n {
		return h, 0, nil
	}
	switch b[1] & 0x7f {
	case 126:
		h.Length = int64(binary.BigEndian.Uint16(b[2:4]))
	case 127:
		if b[2]&0x80 != 0 {
			return h, 0, fmt.Errorf("%w: %w", ErrProtocol, ws.ErrHeaderLengthMSB)
		}
		h.Length = int64(binary.BigEndian.Uint64(b[2:10])) //nolint:gosec // the top bit is 0
	}
	if h.Masked {
		copy(h.Mask[:], b[n-4:n])
	}
	return h, n, nil
}

// makeRoom makes sure buf has room to read into and can hold the frame in
// progress: a pooled buffer when there is nothing pending, a buffer of
// the frame's size for a frame bigger than that.
func (p *polled) makeRoom() {
	switch {
	case p.buf == nil:
		p.pooled = readBufs.Get().(*[readBufSize]byte) //nolint:errcheck,forcetypeassert // the pool holds only these
		p.buf = p.pooled[:0]
	case p.want > cap(p.buf):
		p.grow(p.want)
	case len(p.buf) == cap(p.buf):
		// A header split over reads, in a buffer kept at its size.
		p.grow(max(readBufSize, 2*cap(p.buf)))
	}
}

func (p *polled) grow(size int) {
	b := make([]byte, len(p.buf), size)
	copy(b, p.buf)
	p.putPooled()
	p.buf = b
}

// keepBuf is called when the socket has nothing more to read: the pooled
// buffer goes back, and only an incomplete frame keeps memory of its own,
// at most its size.
func (p *polled) keepBuf() {
	if len(p.buf) == 0 {
		p.dropBuf()
		return
	}
	if p.pooled != nil {
		b := make([]byte, len(p.buf), max(p.want, len(p.buf)))
		copy(b, p.buf)
		p.putPooled()
		p.buf = b
	}
}

func (p *polled) dropBuf() {
	p.putPooled()
	p.buf, p.want = nil, 0
}

func (p *polled) putPooled() {
	if p.pooled != nil {
		readBufs.Put(p.pooled)
		p.pooled = nil
	}
}
