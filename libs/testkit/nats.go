package testkit

import (
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// NATS is an embedded NATS server owned by one test.
type NATS struct {
	t    testing.TB
	opts server.Options
	srv  *server.Server
}

// StartNATS starts an embedded NATS server with JetStream on a free
// 127.0.0.1 port and shuts it down when the test ends.
func StartNATS(t testing.TB) *NATS {
	t.Helper()
	n := &NATS{t: t, opts: server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	}}
	n.start()
	// Restarts come back on the same port so clients reconnect by themselves.
	n.opts.Port = n.srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(n.Shutdown)
	return n
}

func (n *NATS) start() {
	n.t.Helper()
	opts := n.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		n.t.Fatalf("testkit: new nats server: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		n.t.Fatalf("testkit: nats server not ready")
	}
	n.srv = srv
}

// URL is the nats:// URL clients connect to.
func (n *NATS) URL() string { return n.srv.ClientURL() }

// Server is the embedded server, for tests that inspect it.
func (n *NATS) Server() *server.Server { return n.srv }

// Conn returns a client connection, closed when the test ends.
func (n *NATS) Conn() *nats.Conn {
	n.t.Helper()
	nc, err := nats.Connect(n.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		n.t.Fatalf("testkit: connect to nats: %v", err)
	}
	n.t.Cleanup(nc.Close)
	return nc
}

// Shutdown stops the server; it is safe to call more than once.
func (n *NATS) Shutdown() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
	}
}

// Restart shuts the server down and starts it again on the same port and
// store directory, as an operator's restart would.
func (n *NATS) Restart() {
	n.t.Helper()
	n.Shutdown()
	n.start()
}
