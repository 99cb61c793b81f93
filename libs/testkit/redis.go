package testkit

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions tunes a test redis-server.
type RedisOptions struct {
	// AppendOnly turns on AOF with fsync on every write, so a restart after
	// kill -9 keeps every acknowledged write.
	AppendOnly bool
	// Args are extra redis-server arguments, for example "--cluster-enabled yes".
	Args []string
}

// Redis is a redis-server process owned by one test.
type Redis struct {
	t    testing.TB
	opts RedisOptions
	dir  string
	port int

	mu     sync.Mutex
	proc   *os.Process
	exited chan error // receives the process's exit once
}

// RedisBinary is the redis-server executable the kit starts; the Makefile
// installs it when missing.
const RedisBinary = "redis-server"

// StartRedis starts a redis-server on a free 127.0.0.1 port with a fresh
// data directory and stops it when the test ends. It fails the test if no
// redis-server is installed.
func StartRedis(t testing.TB, opts RedisOptions) *Redis {
	t.Helper()
	requireRedisBinary(t)
	r, err := startRedis(t, opts, FreePort)
	if err != nil {
		t.Fatalf("testkit: start redis-server: %v", err)
	}
	return r
}

func requireRedisBinary(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath(RedisBinary); err != nil {
		t.Fatalf("testkit: %s not found in PATH (run `make deps` to install it): %v", RedisBinary, err)
	}
}

// startRedis starts a redis-server in a fresh data directory on a port from
// pick, trying a few ports in case one is taken before the server binds it,
// and stops it when the test ends.
func startRedis(t testing.TB, opts RedisOptions, pick func() (int, error)) (*Redis, error) {
	t.Helper()
	var lastErr error
	for range 5 {
		port, err := pick()
		if err != nil {
			return nil, fmt.Errorf("pick a port: %w", err)
		}
		// A fresh directory per attempt: a failed start may leave files
		// behind, such as a cluster node's nodes.conf.
		r := &Redis{t: t, opts: opts, dir: t.TempDir(), port: port}
		if lastErr = r.start(); lastErr == nil {
			t.Cleanup(r.stop)
			return r, nil
		}
	}
	return nil, lastErr
}

// Addr is host:port of the server.
func (r *Redis) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

// URL is a redis:// URL for the server.
func (r *Redis) URL() string { return "redis://" + r.Addr() + "/0" }

// Port is the server's TCP port.
func (r *Redis) Port() int { return r.port }

// Client returns a go-redis client for the server, closed when the test ends.
func (r *Redis) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	r.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Kill stops the server with SIGKILL, as a crash would.
func (r *Redis) Kill() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return
	}
	_ = r.proc.Signal(syscall.SIGKILL)
	if err := <-r.exited; err != nil {
		r.t.Logf("testkit: redis-server on %s stopped: %v", r.Addr(), err)
	}
	r.proc = nil
}

// Restart starts the server again on the same port and data directory,
// after Kill or while running (then it kills first).
func (r *Redis) Restart() {
	r.t.Helper()
	r.Kill()
	var err error
	for range 50 {
		if err = r.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond) // the port may linger briefly after a kill
	}
	r.t.Fatalf("testkit: restart redis-server: %v", err)
}

// running reports whether the server was started and not killed since.
func (r *Redis) running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proc != nil
}

func (r *Redis) args() []string {
	args := []string{
		"--port", strconv.Itoa(r.port),
		"--bind", "127.0.0.1",
		"--dir", r.dir,
		"--save", "",
		"--daemonize", "no",
		"--protected-mode", "no",
		"--logfile", filepath.Join(r.dir, "redis.log"),
	}
	if r.opts.AppendOnly {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	return append(args, r.opts.Args...)
}

func (r *Redis) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cmd := exec.Command(RedisBinary, r.args()...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("exec %s: %w", RedisBinary, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1})
	defer func() { _ = c.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("redis-server exited: %w: %s", err, r.logTail(5))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited //nolint:errcheck // it was killed for not starting; the ping error says why
			return fmt.Errorf("redis-server on %s not ready: %w", r.Addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.proc, r.exited = cmd.Process, exited
	return nil
}

func (r *Redis) stop() {
	r.Kill()
}

// logTail is the last n lines of the server's log file.
func (r *Redis) logTail(n int) string {
	b, err := os.ReadFile(filepath.Join(r.dir, "redis.log"))
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return lastLines(b, n)
}

func lastLines(b []byte, n int) string {
	end := len(b)
	for i := len(b) - 1; i >= 0 && n > 0; i-- {
		if b[i] == '\n' && i != len(b)-1 {
			n--
			if n == 0 {
				return string(b[i+1 : end])
			}
		}
	}
	return string(b)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("listen: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}
