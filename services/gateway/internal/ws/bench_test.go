package ws

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// BenchmarkIdleConnectionMemory opens idleConns connections, lets them go
// idle and reports the heap and stack they hold, per connection. The
// clients are bare TCP connections in the same process (a net.TCPConn
// each, a few hundred bytes), so the figure is the gateway's cost plus
// that; the peers' doubles forget what they recorded before measuring. Run it once: go test -run '^$' -bench IdleConnectionMemory
// -benchtime 1x ./internal/ws
func BenchmarkIdleConnectionMemory(b *testing.B) {
	const idleConns = 2000
	for b.Loop() {
		h := newHarness(b)
		heap0, stack0 := memInUse()
		conns := make([]net.Conn, 0, idleConns)
		for i := range idleConns {
			conns = append(conns, rawConnect(b, h, fmt.Sprintf("user%d", i)))
		}
		require.Eventually(b, func() bool { return h.srv.Connections() == idleConns }, waitFor, time.Millisecond)
		h.peers.Forget()
		heap1, stack1 := memInUse()
		b.ReportMetric(float64(heap1+stack1-heap0-stack0)/idleConns, "B/idle-conn")
		b.ReportMetric(float64(stack1-stack0)/idleConns, "stack-B/idle-conn")
		b.ReportMetric(float64(runtime.NumGoroutine())/idleConns, "goroutines/idle-conn")
		for _, c := range conns {
			_ = c.Close()
		}
	}
}

// memInUse is the heap and the stacks in use after the garbage is gone.
func memInUse() (heap, stack uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse, m.StackInuse
}

// rawConnect upgrades a bare TCP connection and reads up to the ready
// frame, keeping nothing but the net.Conn.
func rawConnect(b *testing.B, h *harness, user string) net.Conn {
	b.Helper()
	u, err := url.Parse(h.url)
	require.NoError(b, err)
	var d net.Dialer
	nc, err := d.DialContext(context.Background(), "tcp", u.Host)
	require.NoError(b, err)
	req := "GET /ws?token=" + token(b, user, time.Hour) + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	_, err = nc.Write([]byte(req))
	require.NoError(b, err)
	br := bufio.NewReaderSize(nc, 512)
	for {
		line, err := br.ReadSlice('\n')
		require.NoError(b, err)
		if bytes.Equal(line, []byte("\r\n")) {
			break
		}
	}
	var hdr [2]byte
	_, err = io.ReadFull(br, hdr[:])
	require.NoError(b, err)
	payload := make([]byte, hdr[1]&0x7f)
	_, err = io.ReadFull(br, payload)
	require.NoError(b, err)
	require.True(b, strings.HasPrefix(string(payload), `{"type":1000`), "ready: %q", payload)
	return nc
}
