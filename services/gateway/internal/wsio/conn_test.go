package wsio

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gobwas/ws"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const waitFor = 10 * time.Second

// recorder is a Handler that records what it got and can echo text. It
// checks the Handler contract: one call at a time, HandleClose once (a
// second would close closed twice and panic), nothing after it.
type recorder struct {
	echo bool
	conn *Conn
	// gate, when set, is waited on by the message "block".
	gate chan struct{}

	inside    atomic.Int32
	overlaps  atomic.Int32
	afterDone atomic.Bool

	mu     sync.Mutex
	msgs   []string
	types  []MessageType
	closed chan struct{}
	code   StatusCode
	err    error
}

func (r *recorder) HandleMessage(typ MessageType, p []byte) {
	if r.inside.Add(1) > 1 {
		r.overlaps.Add(1)
	}
	defer r.inside.Add(-1)
	select {
	case <-r.closed:
		r.afterDone.Store(true)
	default:
	}
	if string(p) == "block" && r.gate != nil {
		<-r.gate
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, string(p))
	r.types = append(r.types, typ)
	r.mu.Unlock()
	if r.echo {
		_ = r.conn.Send(p, nil)
	}
}

func (r *recorder) HandleClose(code StatusCode, err error) {
	if r.inside.Load() != 0 {
		r.overlaps.Add(1)
	}
	r.mu.Lock()
	r.code, r.err = code, err
	r.mu.Unlock()
	close(r.closed)
}

func (r *recorder) waitClosed(t *testing.T) (StatusCode, error) {
	t.Helper()
	select {
	case <-r.closed:
	case <-time.After(waitFor):
		t.Fatal("HandleClose not called")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.overlaps.Load() != 0 || r.afterDone.Load() {
		t.Error("handler called concurrently or after HandleClose")
	}
	return r.code, r.err
}

// server upgrades every request, lets setup act on the held Conn, then
// serves it with a recorder.
type server struct {
	url   string
	conns chan *recorder
}

func newServer(t *testing.T, opts Options, setup func(c *Conn)) *server {
	t.Helper()
	return newGatedServer(t, opts, setup, nil)
}

// newGatedServer is newServer whose handlers wait on gate when they get
// the message "block".
func newGatedServer(t *testing.T, opts Options, setup func(c *Conn), gate chan struct{}) *server {
	t.Helper()
	s := &server{conns: make(chan *recorder, 4)}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Upgrade(w, r, &opts)
		if err != nil {
			return
		}
		rec := &recorder{echo: true, conn: c, closed: make(chan struct{}), gate: gate}
		if setup != nil {
			setup(c)
		} else {
			require.NoError(t, c.Release([]byte("ready")))
		}
		s.conns <- rec
		c.Serve(rec)
	}))
	t.Cleanup(hs.Close)
	s.url = "ws" + strings.TrimPrefix(hs.URL, "http")
	return s
}

func (s *server) next(t *testing.T) *recorder {
	t.Helper()
	select {
	case r := <-s.conns:
		return r
	case <-time.After(waitFor):
		t.Fatal("no connection")
		return nil
	}
}

func defaultOpts() Options {
	return Options{MaxMessage: 1024, QueueBytes: 4096, WriteTimeout: 5 * time.Second, CloseGrace: 200 * time.Millisecond}
}

// forEachModel runs test under both ways of reading a connection: a
// goroutine per connection, and the epoll Poller. opts is defaultOpts
// with the model's reader.
func forEachModel(t *testing.T, test func(t *testing.T, opts Options)) {
	t.Helper()
	for _, model := range []string{"goroutine", "epoll"} {
		t.Run(model, func(t *testing.T) {
			t.Parallel()
			opts := defaultOpts()
			if model == "epoll" {
				opts.Poller = newPoller(t)
			}
			test(t, opts)
		})
	}
}

// newPoller starts a Poller that the test closes at its end, after its
// connections are gone.
func newPoller(t testing.TB) *Poller {
	t.Helper()
	p, err := NewPoller()
	if errors.Is(err, ErrPollerUnsupported) {
		t.Skip("no epoll here")
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

func dial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

func read(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	typ, b, err := c.Read(ctx)
	require.NoError(t, err)
	require.Equal(t, websocket.MessageText, typ)
	return string(b)
}

func write(t *testing.T, c *websocket.Conn, typ websocket.MessageType, s string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	require.NoError(t, c.Write(ctx, typ, []byte(s)))
}

// readCloseStatus reads until the connection closes and returns the
// server's close code.
func readCloseStatus(t *testing.T, c *websocket.Conn) websocket.StatusCode {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	for {
		_, _, err := c.Read(ctx)
		if err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

func TestReleaseWritesFirstFrameFirst(t *testing.T) {
	t.Parallel()
	forEachModel(t, func(t *testing.T, opts Options) {
		var written sync.WaitGroup
		written.Add(1)
		s := newServer(t, opts, func(c *Conn) {
			require.NoError(t, c.Send([]byte("a"), nil))
			require.NoError(t, c.Send([]byte("b"), written.Done))
			require.NoError(t, c.Release([]byte("first")))
		})
		c := dial(t, s.url)
		require.Equal(t, "first", read(t, c))
		require.Equal(t, "a", read(t, c))
		require.Equal(t, "b", read(t, c))
		written.Wait()
		rec := s.next(t)
		require.NoError(t, c.Close(websocket.StatusNormalClosure, "bye"))
		code, err := rec.waitClosed(t)
		require.Equal(t, CloseNormal, code)
		require.ErrorIs(t, err, ErrPeerClosed)
	})
}

func TestEchoAndSizes(t *testing.T) {
	t.Parallel()
	forEachModel(t, func(t *testing.T, opts Options) {
		s := newServer(t, opts, nil)
		c := dial(t, s.url)
		require.Equal(t, "ready", read(t, c))
		for _, n := range []int{0, 1, 125, 126, 1000, 1024} {
			msg := strings.Repeat("x", n)
			write(t, c, websocket.MessageText, msg)
			require.Equal(t, msg, read(t, c), "size %d", n)
		}
		write(t, c, websocket.MessageBinary, "bin")
		require.Equal(t, "bin", read(t, c))
		rec := s.next(t)
		rec.mu.Lock()
		require.Equal(t, Binary, rec.types[len(rec.types)-1])
		require.Equal(t, Text, rec.types[0])
		rec.mu.Unlock()
	})
}

func TestPingIsAnsweredAndCountsAsActivity(t *testing.T) {
	t.Parallel()
	forEachModel(t, func(t *testing.T, opts Options) {
		s := newServer(t, opts, nil)
		c := dial(t, s.url)
		require.Equal(t, "ready", read(t, c))
		rec := s.next(t)
		before := rec.conn.LastRead()
		// coder/websocket needs a reader running to see the pong.
		ctx, cancel := context.WithTimeout(t.Context(), waitFor)
		defer cancel()
		readCtx := c.CloseRead(ctx)
		require.NoError(t, c.Ping(ctx))
		require.NoError(t, readCtx.Err())
		require.False(t, rec.conn.LastRead().Before(before))
	})
}

func TestServerClose(t *testing.T) {
	t.Parallel()
	forEachModel(t, func(t *testing.T, opts Options) {
		s := newServer(t, opts, nil)
		c := dial(t, s.url)
		require.Equal(t, "ready", read(t, c))
		rec := s.next(t)
		rec.conn.Close(CloseServiceRestart, "restart")
		rec.conn.Close(CloseNormal, "second close is ignored")
		require.Equal(t, websocket.StatusCode(1012), readCloseStatus(t, c))
		code, _ := rec.waitClosed(t)
		require.Equal(t, CloseServiceRestart, code)
		require.ErrorIs(t, rec.conn.Send([]byte("late"), nil), ErrClosed)
	})
}

func TestServerCloseWhileHeld(t *testing.T) {
	t.Parallel()
	forEachModel(t, func(t *testing.T, opts Options) {
		s := newServer(t, opts, func(c *Conn) {
			require.NoError(t, c.Send([]byte("never"), nil))
			c.Close(CloseInternalError, "setup failed")
		})
		nc, br := rawDial(t, s.url)
		texts, got := rawReadUntilClose(t, nc, br)
		require.Empty(t, texts, "held frames must not be written without Release")
		require.Equal(t, ws.StatusInternalServerError, got)
		code, _ := s.next(t).waitClosed(t)
		require.Equal(t, CloseInternalError, code)
	})
}

func TestTooBig(t *testing.T) {
	t.Parallel()
	forEachModel(t, func(t *testing.T, opts Options) {
		tests := []struct {
			name  string
			write func(t *testing.T, c *websocket.Conn)
		}{
			{name: "one frame", write: func(t *testing.T, c *websocket.Conn) {
				write(t, c, websocket.MessageText, strings.Repeat("x", 1025))
			}},
			{name: "binary", write: func(t *testing.T, c *websocket.Conn) {
				write(t, c, websocket.MessageBinary, strings.Repeat("x", 4096))
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := newServer(t, opts, nil)
				c := dial(t, s.url)
				require.Equal(t, "ready", read(t, c))
				tt.write(t, c)
				require.Equal(t, websocket.StatusMessageTooBig, readCloseStatus(t, c))
				code, err := s.next(t).waitClosed(t)
				require.Equal(t, CloseTooBig, code)
				require.ErrorIs(t, err, ErrTooBig)
			})
		}
	})
}

// rawDial connects with gobwas's client so tests can write any frame.
func rawDial(t *testing.T, url string) (net.Conn, *bufio.Reader) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	nc, br, _, err := ws.Dial(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = nc.Close() })
	if br == nil {
		br = bufio.NewReader(nc)
	}
	return nc, br
}

// rawReadUntilClose returns the text frames and the close code the server
// sent.
func rawReadUntilClose(t *testing.T, nc net.Conn, br *bufio.Reader) ([]string, ws.StatusCode) {
	t.Helper()
	require.NoError(t, nc.SetReadDeadline(time.Now().Add(waitFor)))
	var texts []string
	for {
		f, err := ws.ReadFrame(br) //nolint:staticcheck // server frames in a test, sizes known
		require.NoError(t, err)
		switch f.Header.OpCode {
		case ws.OpText:
			texts = append(texts, string(f.Payload))
		case ws.OpClose:
			code, _ := ws.ParseCloseFrameData(f.Payload)
			return texts, code
		}
	}
}

func TestRawFrames(t *testing.T) {
	t.Parallel()
	forEachModel(t, func(t *testing.T, opts Options) {
		masked := func(f ws.Frame) ws.Frame { return ws.MaskFrameInPlace(f) }
		tests := []struct {
			name      string
			frames    []ws.Frame
			wantTexts []string
			wantCode  ws.StatusCode
		}{
			{
				name: "fragments are reassembled, control frames between them",
				frames: []ws.Frame{
					masked(ws.NewFrame(ws.OpText, false, []byte("he"))),
					masked(ws.NewPingFrame([]byte("p"))),
					masked(ws.NewFrame(ws.OpContinuation, false, []byte("ll"))),
					masked(ws.NewFrame(ws.OpContinuation, true, []byte("o"))),
					masked(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))),
				},
				wantTexts: []string{"ready", "hello"},
				wantCode:  ws.StatusNormalClosure,
			},
			{
				name: "fragments over the limit",
				frames: []ws.Frame{
					masked(ws.NewFrame(ws.OpText, false, make([]byte, 1000))),
					masked(ws.NewFrame(ws.OpContinuation, true, make([]byte, 100))),
				},
				wantTexts: []string{"ready"},
				wantCode:  ws.StatusMessageTooBig,
			},
			{
				name:      "unmasked frame",
				frames:    []ws.Frame{ws.NewTextFrame([]byte("x"))},
				wantTexts: []string{"ready"},
				wantCode:  ws.StatusProtocolError,
			},
			{
				name:      "continuation first",
				frames:    []ws.Frame{masked(ws.NewFrame(ws.OpContinuation, true, []byte("x")))},
				wantTexts: []string{"ready"},
				wantCode:  ws.StatusProtocolError,
			},
			{
				name:      "close without code is answered 1000",
				frames:    []ws.Frame{masked(ws.NewCloseFrame(nil))},
				wantTexts: []string{"ready"},
				wantCode:  ws.StatusNormalClosure,
			},
			{
				name:      "close with a reserved code",
				frames:    []ws.Frame{masked(ws.NewCloseFrame(ws.NewCloseFrameBody(1005, "")))},
				wantTexts: []string{"ready"},
				wantCode:  ws.StatusProtocolError,
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := newServer(t, opts, nil)
				nc, br := rawDial(t, s.url)
				for _, f := range tt.frames {
					require.NoError(t, ws.WriteFrame(nc, f))
				}
				texts, code := rawReadUntilClose(t, nc, br)
				require.Equal(t, tt.wantTexts, texts)
				require.Equal(t, tt.wantCode, code)
				_, _ = s.next(t).waitClosed(t)
			})
		}
	})
}

func TestQueueFull(t *testing.T) {
	t.Parallel()
	forEachModel(t, func(t *testing.T, opts Options) {
		opts.QueueBytes = 10
		s := newServer(t, opts, func(c *Conn) {
			require.NoError(t, c.Send([]byte("12345"), nil))
			require.NoError(t, c.Send([]byte("67890"), nil))
			require.ErrorIs(t, c.Send([]byte("x"), nil), ErrQueueFull)
			require.NoError(t, c.Release([]byte("r")))
		})
		c := dial(t, s.url)
		require.Equal(t, "r", read(t, c))
		require.Equal(t, "12345", read(t, c))
		require.Equal(t, "67890", read(t, c))
	})
}

func TestPeerVanishes(t *testing.T) {
	t.Parallel()
	forEachModel(t, func(t *testing.T, opts Options) {
		s := newServer(t, opts, nil)
		c := dial(t, s.url)
		require.Equal(t, "ready", read(t, c))
		require.NoError(t, c.CloseNow())
		code, err := s.next(t).waitClosed(t)
		require.Equal(t, CloseAbnormal, code)
		require.Error(t, err)
		require.False(t, errors.Is(err, ErrPeerClosed))
	})
}

func TestPeerIgnoresClose(t *testing.T) {
	t.Parallel()
	forEachModel(t, func(t *testing.T, opts Options) {
		opts.CloseGrace = 50 * time.Millisecond
		s := newServer(t, opts, nil)
		nc, br := rawDial(t, s.url)
		rec := s.next(t)
		rec.conn.Close(CloseGoingAway, "idle timeout")
		// The raw client reads the close frame but never answers it; the
		// server gives up after CloseGrace.
		_, code := rawReadUntilClose(t, nc, br)
		require.Equal(t, ws.StatusGoingAway, code)
		got, _ := rec.waitClosed(t)
		require.Equal(t, CloseGoingAway, got)
	})
}

func TestUpgradeRejectsPlainHTTP(t *testing.T) {
	t.Parallel()
	forEachModel(t, func(t *testing.T, opts Options) {
		s := newServer(t, opts, nil)
		resp, err := http.Get("http" + strings.TrimPrefix(s.url, "ws"))
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	})
}
