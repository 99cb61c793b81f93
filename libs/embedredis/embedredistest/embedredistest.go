// Package embedredistest starts the embedded store of package embedredis for
// a test, as package testkit does redis-server. It lives apart from testkit
// so that only the modules whose tests use it depend on miniredis.
package embedredistest

import (
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bachata-chat/bachata/libs/embedredis"
)

// Server is the embedded store `make run` uses when REDIS_URL is unset,
// owned by one test, in its own directory. Like testkit.Redis, it can be
// killed and restarted on the same port and data.
type Server struct {
	t    testing.TB
	dir  string
	addr string

	mu  sync.Mutex
	srv *embedredis.Server
}

// Start opens an embedded store in a fresh directory on a free 127.0.0.1
// port and closes it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	e := &Server{t: t, dir: t.TempDir(), addr: "127.0.0.1:0"}
	if err := e.start(); err != nil {
		t.Fatalf("embedredistest: start embedded store: %v", err)
	}
	t.Cleanup(e.stop)
	return e
}

// Addr is host:port of the store.
func (e *Server) Addr() string { return e.addr }

// URL is a redis:// URL for the store.
func (e *Server) URL() string { return "redis://" + e.addr + "/0" }

// Dir is the store's data directory.
func (e *Server) Dir() string { return e.dir }

// Client returns a go-redis client for the store, closed when the test ends.
func (e *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: e.addr})
	e.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Kill stops the store as a crash would: what was not yet durable is lost,
// everything acknowledged is in its journal.
func (e *Server) Kill() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srv != nil {
		e.srv.Kill()
		e.srv = nil
	}
}

// Restart opens the store again on the same port and directory, after Kill
// or while running (then it kills first).
func (e *Server) Restart() {
	e.t.Helper()
	e.Kill()
	var err error
	for range 50 {
		if err = e.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond) //nolint:forbidigo // a test helper, as testkit: the port may linger briefly
	}
	e.t.Fatalf("embedredistest: restart embedded store: %v", err)
}

func (e *Server) start() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	srv, err := embedredis.Open(embedredis.Options{Dir: e.dir, Addr: e.addr})
	if err != nil {
		return err
	}
	e.srv, e.addr = srv, srv.Addr()
	return nil
}

func (e *Server) stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srv == nil {
		return
	}
	if err := e.srv.Close(); err != nil {
		e.t.Errorf("embedredistest: close embedded store: %v", err)
	}
	e.srv = nil
}
