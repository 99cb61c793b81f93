package wsio

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// FuzzServe feeds arbitrary client bytes to a connection: the reader must
// never panic, never hand over a message above the limit, and always end
// with HandleClose.
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
	f.Fuzz(func(t *testing.T, in []byte) {
		server, client := net.Pipe()
		go func() { _, _ = io.Copy(io.Discard, client) }()
		go func() {
			_, _ = client.Write(in)
			_ = client.Close()
		}()
		opts := &Options{MaxMessage: 256, QueueBytes: 1024, WriteTimeout: time.Second, CloseGrace: 10 * time.Millisecond}
		c := newConn(server, server, opts)
		if err := c.Release([]byte("ready")); err != nil {
			t.Fatal(err)
		}
		h := &recorder{conn: c, closed: make(chan struct{})}
		c.Serve(h)
		select {
		case <-h.closed:
		default:
			t.Fatal("Serve returned before HandleClose")
		}
		for _, m := range h.msgs {
			if len(m) > opts.MaxMessage {
				t.Fatalf("message of %d bytes over the limit", len(m))
			}
		}
	})
}
