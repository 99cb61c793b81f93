package wsio

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gobwas/ws"
	"github.com/stretchr/testify/require"
)

// idleConns is how many connections BenchmarkIdleMemory opens. Both ends
// live in this process, two descriptors each, so it stays well under a
// descriptor limit of 20,000.
const idleConns = 5000

// BenchmarkIdleMemory opens idleConns upgraded connections over loopback,
// lets them go idle and reports the heap and stacks each holds, after a
// GC. "sockets" holds the same TCP connections without WebSocket I/O: the
// cost of the two net.Conns and their runtime poll descriptors, which the
// others include. "goroutine" and "epoll" are this package's two readers;
// "coder" is the alternative library already in the module,
// github.com/coder/websocket, served the usual way (the HTTP handler
// keeps the connection and blocks in Read). The figures go in
// docs/benchmarks.md; run it once:
//
//	go test -run '^$' -bench IdleMemory -benchtime 1x ./internal/wsio
func BenchmarkIdleMemory(b *testing.B) {
	for _, model := range []string{"sockets", "goroutine", "epoll", "coder"} {
		b.Run(model, func(b *testing.B) {
			opts := Options{MaxMessage: 64 << 10, QueueBytes: 1 << 20, WriteTimeout: 10 * time.Second}
			if model == "epoll" {
				opts.Poller = newPoller(b)
			}
			for b.Loop() {
				benchIdle(b, model, &opts)
			}
		})
	}
}

func benchIdle(b *testing.B, model string, opts *Options) {
	var lc net.ListenConfig
	l, err := lc.Listen(b.Context(), "tcp", "127.0.0.1:0")
	require.NoError(b, err)
	if model == "coder" {
		benchCoder(b, l)
		return
	}
	var (
		mu      sync.Mutex
		servers []net.Conn
		accepts sync.WaitGroup
	)
	accepts.Go(func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			servers = append(servers, nc)
			mu.Unlock()
			if model == "sockets" {
				continue
			}
			if _, err := ws.Upgrade(nc); err != nil {
				_ = nc.Close()
				continue
			}
			c := newConn(nc, nil, opts)
			_ = c.Release([]byte("r"))
			if c.polled != nil {
				c.Serve(nopHandler{})
			} else {
				go c.Serve(nopHandler{})
			}
		}
	})
	heap0, stack0, g0 := memInUse()
	clients := make([]net.Conn, 0, idleConns)
	for range idleConns {
		clients = append(clients, benchDial(b, l.Addr().String(), model != "sockets"))
	}
	// The last accepts may still be on their way (a bare socket waits for
	// nothing).
	require.Eventually(b, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(servers) == idleConns
	}, 10*time.Second, time.Millisecond)
	heap1, stack1, g1 := memInUse()
	reportIdle(b, heap0, stack0, g0, heap1, stack1, g1)

	_ = l.Close()
	accepts.Wait()
	for _, c := range clients {
		_ = c.Close()
	}
	if model == "sockets" {
		for _, c := range servers {
			_ = c.Close()
		}
	}
}

type nopHandler struct{}

func (nopHandler) HandleMessage(MessageType, []byte) {}
func (nopHandler) HandleClose(StatusCode, error)     {}

// benchDial connects and, for a WebSocket, upgrades and reads the frame
// the server releases, keeping nothing but the net.Conn.
func benchDial(b *testing.B, addr string, upgrade bool) net.Conn {
	b.Helper()
	var d net.Dialer
	nc, err := d.DialContext(context.Background(), "tcp", addr)
	require.NoError(b, err)
	if !upgrade {
		return nc
	}
	_, err = io.WriteString(nc, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	require.NoError(b, err)
	br := bufio.NewReaderSize(nc, 256)
	for {
		line, err := br.ReadSlice('\n')
		require.NoError(b, err)
		if string(line) == "\r\n" {
			break
		}
	}
	var frame [3]byte
	_, err = io.ReadFull(br, frame[:])
	require.NoError(b, err)
	require.Equal(b, "r", string(frame[2:]))
	if br.Buffered() != 0 {
		require.NoError(b, errors.New("unexpected bytes after the ready frame"))
	}
	return nc
}

// reportIdle reports the difference between two memInUse readings, per
// connection.
func reportIdle(b *testing.B, heap0, stack0 uint64, g0 int, heap1, stack1 uint64, g1 int) {
	diff := func(a, b uint64) float64 { return float64(int64(b)-int64(a)) / idleConns } //nolint:gosec // memory sizes
	b.ReportMetric(diff(heap0, heap1)+diff(stack0, stack1), "B/conn")
	b.ReportMetric(diff(stack0, stack1), "stack-B/conn")
	b.ReportMetric(float64(g1-g0)/idleConns, "goroutines/conn")
}

// memInUse is the heap and the stacks in use after the garbage is gone,
// and the goroutine count.
func memInUse() (heap, stack uint64, goroutines int) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse, m.StackInuse, runtime.NumGoroutine()
}

// benchCoder is benchIdle with github.com/coder/websocket serving l.
func benchCoder(b *testing.B, l net.Listener) {
	var served sync.WaitGroup
	hs := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		defer served.Done()
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer func() { _ = c.CloseNow() }()
		if c.Write(r.Context(), websocket.MessageText, []byte("r")) != nil {
			return
		}
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	})}
	go func() { _ = hs.Serve(l) }()
	heap0, stack0, g0 := memInUse()
	clients := make([]net.Conn, 0, idleConns)
	for range idleConns {
		clients = append(clients, benchDial(b, l.Addr().String(), true))
	}
	heap1, stack1, g1 := memInUse()
	reportIdle(b, heap0, stack0, g0, heap1, stack1, g1)
	for _, c := range clients {
		_ = c.Close()
	}
	_ = hs.Close()
	served.Wait()
}

// BenchmarkRoundTrip measures one small message from a client and its
// echo back, under each reader, with 64 connections busy at once: what
// the epoll reader's extra work per wake-up (a goroutine, a re-arm) costs
// a busy connection.
//
//	go test -run '^$' -bench RoundTrip -benchtime 3s ./internal/wsio
func BenchmarkRoundTrip(b *testing.B) {
	for _, model := range []string{"goroutine", "epoll"} {
		b.Run(model, func(b *testing.B) {
			opts := defaultOpts()
			if model == "epoll" {
				opts.Poller = newPoller(b)
			}
			var lc net.ListenConfig
			l, err := lc.Listen(b.Context(), "tcp", "127.0.0.1:0")
			require.NoError(b, err)
			b.Cleanup(func() { _ = l.Close() })
			go func() {
				for {
					nc, err := l.Accept()
					if err != nil {
						return
					}
					if _, err := ws.Upgrade(nc); err != nil {
						_ = nc.Close()
						continue
					}
					c := newConn(nc, nil, &opts)
					_ = c.Release([]byte("r"))
					go c.Serve(echoHandler{c})
				}
			}()
			frame, err := ws.CompileFrame(ws.MaskFrameInPlace(ws.NewTextFrame([]byte(`{"type":1001}`))))
			require.NoError(b, err)
			b.SetParallelism(32) // 64 connections on 2 cores
			cpu0 := cpuTime(b)
			defer func() { b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op") }()
			b.RunParallel(func(pb *testing.PB) {
				nc := benchDial(b, l.Addr().String(), true)
				defer func() { _ = nc.Close() }()
				reply := make([]byte, 2+len(`{"type":1001}`))
				for pb.Next() {
					if _, err := nc.Write(frame); err != nil {
						b.Error(err)
						return
					}
					if _, err := io.ReadFull(nc, reply); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// cpuTime is the CPU this process used so far, user and system, in ns:
// both ends of the connections run here, so it is the whole cost of a
// round trip, which the machine's other load does not change.
func cpuTime(b *testing.B) int64 {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return ru.Utime.Nano() + ru.Stime.Nano()
}

type echoHandler struct{ c *Conn }

func (h echoHandler) HandleMessage(_ MessageType, p []byte) { _ = h.c.Send(p, nil) }
func (echoHandler) HandleClose(StatusCode, error)           {}
