package wsio

import (
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// FuzzServe feeds arbitrary client bytes to a connection, read by a
// goroutine and by the epoll Poller: the reader must never panic, never
// hand over a message above the limit, and always end with HandleClose.
func FuzzServe(f *testing.F) {
	masked := func(fr ws.Frame) []byte {
		b, err := ws.CompileFrame(ws.MaskFrameInPlace(fr))
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	f.Add(masked(ws.NewTextFrame([]byte(`{"type":1001}`))))
	f.Add(append(masked(ws.NewFrame(ws.OpText, false, []byte("he"))), masked(ws.NewFrame(ws.OpContinuation, true, []byte("llo")))...))
	f.Add(masked(ws.NewPingFrame([]byte("p"))))
	f.Add(masked(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye"))))
	f.Add(masked(ws.NewBinaryFrame(make([]byte, 300))))
	f.Add([]byte{0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	poller := newPoller(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, p := range []*Poller{nil, poller} {
			server, client := net.Pipe()
			if p != nil {
				server, client = socketPair(t)
			}
			go func() { _, _ = io.Copy(io.Discard, client) }()
			go func() {
				_, _ = client.Write(in)
				_ = client.Close()
			}()
			opts := &Options{MaxMessage: 256, QueueBytes: 1024, WriteTimeout: time.Second, CloseGrace: 10 * time.Millisecond, Poller: p}
			c := newConn(server, nil, opts)
			if err := c.Release([]byte("ready")); err != nil {
				t.Fatal(err)
			}
			h := &recorder{conn: c, closed: make(chan struct{})}
			c.Serve(h)
			if p == nil {
				select {
				case <-h.closed:
				default:
					t.Fatal("Serve returned before HandleClose")
				}
			} else {
				_, _ = h.waitClosed(t)
			}
			for _, m := range h.msgs {
				if len(m) > opts.MaxMessage {
					t.Fatalf("message of %d bytes over the limit", len(m))
				}
			}
		}
	})
}

// socketPair is a connected pair of Unix stream sockets: real descriptors
// a Poller can watch, without a listener.
func socketPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]net.Conn, 2)
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		_ = f.Close() // FileConn holds a duplicate
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	return conns[0], conns[1]
}
