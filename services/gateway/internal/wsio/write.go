package wsio

import (
	"encoding/binary"
	"net"
	"time"

	"github.com/gobwas/ws"
)

// flush is the writer goroutine: it writes what is queued, in batches (one
// writev per batch), until the queue is empty, then exits. A failed or
// timed-out write closes the socket, which ends the reader too.
func (c *Conn) flush() {
	for {
		c.mu.Lock()
		batch := c.queue
		c.queue, c.queued = nil, 0
		if len(batch) == 0 {
			c.flushing = false
			if c.flushIdle != nil {
				close(c.flushIdle)
				c.flushIdle = nil
			}
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()

		if err := c.writeBatch(batch); err != nil {
			c.abort(CloseAbnormal)
			c.mu.Lock()
			c.flushing = false
			if c.flushIdle != nil {
				close(c.flushIdle)
				c.flushIdle = nil
			}
			c.mu.Unlock()
			return
		}
		for _, f := range batch {
			if f.written != nil {
				f.written()
			}
		}
	}
}

// writeBatch writes frames as one vectored write: a header and a payload
// per frame, the headers sharing one small allocation.
func (c *Conn) writeBatch(batch []outFrame) error {
	headers := make([]byte, 0, len(batch)*ws.MaxHeaderSize)
	bufs := make(net.Buffers, 0, 2*len(batch))
	for _, f := range batch {
		start := len(headers)
		headers = appendHeader(headers, f.op, len(f.payload))
		bufs = append(bufs, headers[start:], f.payload)
	}
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout)); err != nil {
		return err
	}
	_, err := bufs.WriteTo(c.nc)
	return err
}

// appendHeader appends an unmasked, final frame header: servers never
// mask (RFC 6455 section 5.1) and the gateway never fragments.
func appendHeader(b []byte, op ws.OpCode, n int) []byte {
	b = append(b, 0x80|byte(op))
	switch {
	case n <= 125:
		return append(b, byte(n)) //nolint:gosec // 0 <= n <= 125
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, 126), uint16(n)) //nolint:gosec // n <= 0xffff
	default:
		return binary.BigEndian.AppendUint64(append(b, 127), uint64(n)) //nolint:gosec // n is a slice length, never negative
	}
}

// waitFlushed waits until the writer goroutine is idle or the write
// timeout passed, so the close frame leaves before the socket closes.
func (c *Conn) waitFlushed() {
	c.mu.Lock()
	if !c.flushing {
		c.mu.Unlock()
		return
	}
	if c.flushIdle == nil {
		c.flushIdle = make(chan struct{})
	}
	idle := c.flushIdle
	c.mu.Unlock()
	t := time.NewTimer(c.opts.WriteTimeout)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	}
}
