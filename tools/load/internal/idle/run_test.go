package idle

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

// TestMain doubles as a worker process: ExecStarter starts this test
// binary with "idle" and the worker flags.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "idle" {
		c, err := ParseFlags(os.Args[2:], os.Getenv, os.Stderr)
		if err == nil {
			err = WorkerMain(context.Background(), c, os.Stdin, os.Stdout)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const waitFor = 20 * time.Second

// fakeGateway accepts connections whose token names a distinct user,
// sends the ready frame and a ping, and counts the clients' close frames.
type fakeGateway struct {
	url, metrics string
	users        sync.Map
	closes       atomic.Int64
}

func newFakeGateway(t *testing.T) *fakeGateway {
	t.Helper()
	g := &fakeGateway{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "go_goroutines 10\ngo_memstats_heap_inuse_bytes 1e6\ngo_memstats_stack_inuse_bytes 5e5\ngo_gc_duration_seconds_count 3\n")
	})
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		var claims jwt.RegisteredClaims
		_, err := jwt.ParseWithClaims(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), &claims,
			func(*jwt.Token) (any, error) { return []byte(testSecret), nil }, jwt.WithValidMethods([]string{"HS256"}))
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if _, dup := g.users.LoadOrStore(claims.Subject, true); dup {
			http.Error(w, "user connected twice", http.StatusConflict)
			return
		}
		nc, _, _, err := ws.UpgradeHTTP(r, w)
		if err != nil {
			return
		}
		go func() {
			defer func() { _ = nc.Close() }()
			_ = nc.SetDeadline(time.Now().Add(waitFor))
			if wsutil.WriteServerText(nc, []byte(`{"type":1000,"data":"k"}`)) != nil ||
				wsutil.WriteServerText(nc, []byte(`{"type":1001}`)) != nil {
				return
			}
			for {
				msgs, err := wsutil.ReadClientMessage(nc, nil)
				for _, m := range msgs {
					if m.OpCode == ws.OpClose {
						if code, _ := ws.ParseCloseFrameData(m.Payload); code == ws.StatusNormalClosure {
							g.closes.Add(1)
						}
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	g.url = "ws" + strings.TrimPrefix(s.URL, "http") + "/ws"
	g.metrics = s.URL + "/metrics"
	return g
}

// inProcess runs workers as goroutines of the test.
func inProcess(ctx context.Context, c *Config, i int) (*Worker, error) {
	wc := *c
	first, n := c.share(i)
	wc.WorkerFirst, wc.Conns = first, n
	events := make(chan Event, 2)
	released := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		done <- Work(ctx, wc, first, n, released, func(e Event) error { events <- e; return nil })
		close(events)
	}()
	return &Worker{
		Events:  events,
		Release: func() { once.Do(func() { close(released) }) },
		Wait: func(ctx context.Context) error {
			select {
			case err := <-done:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	}, nil
}

func TestRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		start Starter
		procs string
	}{
		{name: "in process", start: inProcess, procs: "3"},
		{name: "worker processes", start: ExecStarter, procs: "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := newFakeGateway(t)
			c, err := ParseFlags([]string{
				"-gateway", g.url, "-gateway-metrics", g.metrics, "-gateway-pid", fmt.Sprint(os.Getpid()),
				"-conns", "40", "-procs", tt.procs, "-sources", "127.0.0.2-127.0.0.3",
				"-hold", "1ms", "-settle", "0s", "-gc-wait", "0s", "-parallel", "8",
			}, env(testSecret), io.Discard)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(t.Context(), waitFor)
			defer cancel()
			var out bytes.Buffer
			rep, err := Run(ctx, c, tt.start, &out)
			require.NoError(t, err, out.String())
			require.Equal(t, 40, rep.Connected)
			require.Zero(t, rep.Failed)
			require.Zero(t, rep.Lost, rep.LostReason)
			require.Positive(t, rep.Idle.RSS)
			require.EqualValues(t, 10, rep.Idle.Goroutines)
			require.Contains(t, out.String(), "per connection (40)")
			require.Eventually(t, func() bool { return g.closes.Load() == 40 }, waitFor, 10*time.Millisecond,
				"every client closes with 1000 when released")
		})
	}
}

func TestRunReportsFailedConnects(t *testing.T) {
	t.Parallel()
	g := newFakeGateway(t)
	c, err := ParseFlags([]string{"-gateway", g.url, "-conns", "5", "-hold", "1ms", "-settle", "0s", "-gc-wait", "0s"},
		env("not-the-gateways-secret"), io.Discard)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	var out bytes.Buffer
	rep, err := Run(ctx, c, inProcess, &out)
	require.Error(t, err)
	require.Equal(t, 5, rep.Failed)
	require.Contains(t, out.String(), "401")
}
