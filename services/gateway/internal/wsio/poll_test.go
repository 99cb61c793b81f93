package wsio

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gobwas/ws"
	"github.com/stretchr/testify/require"
)

func TestParseHeaderAgreesWithGobwas(t *testing.T) {
	t.Parallel()
	mask := [4]byte{1, 2, 3, 4}
	headers := []ws.Header{
		{Fin: true, OpCode: ws.OpText, Masked: true, Mask: mask, Length: 0},
		{Fin: true, OpCode: ws.OpText, Masked: true, Mask: mask, Length: 125},
		{Fin: false, OpCode: ws.OpBinary, Masked: true, Mask: mask, Length: 126},
		{Fin: true, OpCode: ws.OpContinuation, Masked: true, Mask: mask, Length: 65535},
		{Fin: true, OpCode: ws.OpText, Masked: true, Mask: mask, Length: 65536},
		{Fin: true, OpCode: ws.OpPing, Rsv: 4, Length: 3},
		{Fin: true, OpCode: ws.OpClose, Length: 1 << 40},
	}
	for _, want := range headers {
		var b bytes.Buffer
		require.NoError(t, ws.WriteHeader(&b, want))
		full := b.Bytes()
		for cut := range len(full) {
			_, n, err := parseHeader(full[:cut])
			require.NoError(t, err)
			require.Zero(t, n, "%d of %d bytes is not a header yet", cut, len(full))
		}
		got, n, err := parseHeader(append(full, 0xAA, 0xBB))
		require.NoError(t, err)
		require.Equal(t, len(full), n)
		require.Equal(t, want, got)
	}
	// A 64-bit length with the top bit set is refused, as gobwas does.
	_, _, err := parseHeader([]byte{0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4})
	require.ErrorIs(t, err, ErrProtocol)
}

// TestFramesInAnyPieces writes frames split at every byte, and many frames
// in one write: messages come out whole and in order either way.
func TestFramesInAnyPieces(t *testing.T) {
	t.Parallel()
	forEachModel(t, func(t *testing.T, opts Options) {
		s := newServer(t, opts, nil)
		nc, br := rawDial(t, s.url)
		rec := s.next(t)
		masked := func(f ws.Frame) []byte {
			b, err := ws.CompileFrame(ws.MaskFrameInPlace(f))
			require.NoError(t, err)
			return b
		}
		var want []string
		var stream []byte
		for i, size := range []int{0, 5, 125, 126, 300, 1024} {
			msg := fmt.Sprintf("%d:%s", i, strings.Repeat("y", max(size-3, 0)))
			want = append(want, msg)
			stream = append(stream, masked(ws.NewTextFrame([]byte(msg)))...)
		}
		want = append(want, "frag-mented")
		stream = append(stream, masked(ws.NewFrame(ws.OpText, false, []byte("frag-")))...)
		stream = append(stream, masked(ws.NewPingFrame([]byte("p")))...)
		stream = append(stream, masked(ws.NewFrame(ws.OpContinuation, true, []byte("mented")))...)
		// Byte by byte (with Nagle off every write is a segment of its
		// own), then everything again in one write.
		require.NoError(t, nc.(*net.TCPConn).SetNoDelay(true))
		for _, b := range stream {
			_, err := nc.Write([]byte{b})
			require.NoError(t, err)
		}
		_, err := nc.Write(stream)
		require.NoError(t, err)
		require.NoError(t, ws.WriteFrame(nc, ws.MaskFrameInPlace(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, "")))))
		texts, code := rawReadUntilClose(t, nc, br)
		require.Equal(t, ws.StatusNormalClosure, code)
		require.Equal(t, append([]string{"ready"}, append(want, want...)...), texts, "echoes in order")
		_, err = rec.waitClosed(t)
		require.ErrorIs(t, err, ErrPeerClosed)
		rec.mu.Lock()
		defer rec.mu.Unlock()
		require.Equal(t, append(want, want...), rec.msgs)
	})
}

// TestManyMessagesInOrder sends a burst that arrives faster than it is
// handled: every message reaches the handler once, in order, one call at
// a time.
func TestManyMessagesInOrder(t *testing.T) {
	t.Parallel()
	forEachModel(t, func(t *testing.T, opts Options) {
		opts.QueueBytes = 1 << 20
		s := newServer(t, opts, nil)
		c := dial(t, s.url)
		require.Equal(t, "ready", read(t, c))
		rec := s.next(t)
		const n = 2000
		ctx, cancel := context.WithTimeout(t.Context(), waitFor)
		defer cancel()
		echoes := discard(ctx, c)
		for i := range n {
			require.NoError(t, c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, "m%d", i)))
		}
		require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
		<-echoes
		_, err := rec.waitClosed(t)
		require.ErrorIs(t, err, ErrPeerClosed)
		rec.mu.Lock()
		defer rec.mu.Unlock()
		require.Len(t, rec.msgs, n)
		for i, m := range rec.msgs {
			require.Equal(t, fmt.Sprintf("m%d", i), m)
		}
	})
}

// TestBlockedHandlerHoldsOnlyItsConnection: while one connection's
// handler is stuck, its client can keep writing (TCP pushes back once the
// socket buffers are full; the server does not read ahead into memory),
// other connections are served, and nothing is lost once it is released.
func TestBlockedHandlerHoldsOnlyItsConnection(t *testing.T) {
	t.Parallel()
	forEachModel(t, func(t *testing.T, opts Options) {
		opts.QueueBytes = 8 << 20
		gate := make(chan struct{})
		s := newGatedServer(t, opts, nil, gate)
		stuck := dial(t, s.url)
		require.Equal(t, "ready", read(t, stuck))
		stuckRec := s.next(t)
		write(t, stuck, websocket.MessageText, "block")

		// Far more than the socket buffers hold, written meanwhile.
		const n, size = 4000, 1000
		payload := strings.Repeat("z", size-5)
		ctx, cancel := context.WithTimeout(t.Context(), waitFor)
		defer cancel()
		stuckRead := discard(ctx, stuck)
		written := make(chan error, 1)
		go func() {
			for i := range n {
				if err := stuck.Write(ctx, websocket.MessageText, fmt.Appendf(nil, "%04d%s", i, payload)); err != nil {
					written <- err
					return
				}
			}
			written <- nil
		}()

		other := dial(t, s.url)
		require.Equal(t, "ready", read(t, other))
		otherRec := s.next(t)
		write(t, other, websocket.MessageText, "not stuck")
		require.Equal(t, "not stuck", read(t, other))
		require.NoError(t, other.Close(websocket.StatusNormalClosure, ""))
		_, _ = otherRec.waitClosed(t)

		close(gate)
		require.NoError(t, <-written)
		require.NoError(t, stuck.Close(websocket.StatusNormalClosure, ""))
		<-stuckRead
		_, err := stuckRec.waitClosed(t)
		require.ErrorIs(t, err, ErrPeerClosed)
		stuckRec.mu.Lock()
		defer stuckRec.mu.Unlock()
		require.Len(t, stuckRec.msgs, n+1)
		for i, m := range stuckRec.msgs[1:] {
			require.Equal(t, fmt.Sprintf("%04d", i), m[:4])
		}
	})
}

func TestLengthWithTopBitIsAProtocolError(t *testing.T) {
	t.Parallel()
	forEachModel(t, func(t *testing.T, opts Options) {
		s := newServer(t, opts, nil)
		nc, br := rawDial(t, s.url)
		_, err := nc.Write([]byte{0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4})
		require.NoError(t, err)
		_, code := rawReadUntilClose(t, nc, br)
		require.Equal(t, ws.StatusProtocolError, code)
		got, err := s.next(t).waitClosed(t)
		require.Equal(t, CloseProtocolError, got)
		require.ErrorIs(t, err, ErrProtocol)
	})
}

func TestPollerCloseEndsItsConnections(t *testing.T) {
	t.Parallel()
	p, err := NewPoller()
	if err != nil {
		t.Skip("no epoll here:", err)
	}
	opts := defaultOpts()
	opts.Poller = p
	s := newServer(t, opts, nil)
	c := dial(t, s.url)
	require.Equal(t, "ready", read(t, c))
	rec := s.next(t)
	require.Eventually(t, func() bool { return p.Len() == 1 }, waitFor, time.Millisecond)
	require.NoError(t, p.Close())
	code, err := rec.waitClosed(t)
	require.Equal(t, CloseAbnormal, code)
	require.Error(t, err)
	require.Zero(t, p.Len())
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	_, _, err = c.Read(ctx)
	require.Error(t, err, "the client sees the connection end")
}

func TestPollerUnregistersEndedConnections(t *testing.T) {
	t.Parallel()
	opts := defaultOpts()
	opts.Poller = newPoller(t)
	s := newServer(t, opts, nil)
	for range 3 {
		c := dial(t, s.url)
		require.Equal(t, "ready", read(t, c))
		require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
		_, _ = s.next(t).waitClosed(t)
	}
	require.Zero(t, opts.Poller.Len())
}

func TestConnWithoutDescriptorGetsAGoroutine(t *testing.T) {
	t.Parallel()
	opts := defaultOpts()
	opts.Poller = newPoller(t)
	server, client := net.Pipe()
	t.Cleanup(func() { _ = client.Close() })
	c := newConn(server, nil, &opts)
	require.Nil(t, c.polled, "a net.Pipe cannot be polled")
}

// discard reads and drops what the server sends until the connection
// ends; the returned channel is closed then.
func discard(ctx context.Context, c *websocket.Conn) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, _, err := c.Read(ctx); err != nil {
				return
			}
		}
	}()
	return done
}
