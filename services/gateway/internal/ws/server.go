// Package ws is the gateway's WebSocket endpoint and the per-connection
// protocol: authentication before the upgrade, the session set-up with
// presence and delivery, ping/pong and idleness, data messages routed to
// the router, deliveries and receipts written to sockets, and the close
// path that tells presence and delivery the connection is gone.
//
// Close codes the gateway sends (see wsio for the numbers):
//   - 1000 "replaced": a newer connection of the same device arrived (on
//     this gateway); the old one should not reconnect by itself, or two
//     tabs of one device would replace each other forever.
//   - 1001 "idle timeout": nothing arrived for the idle timeout.
//   - 1002: RFC 6455 framing broken. 1009: a message over the size limit.
//   - 1011 "session setup failed": presence or delivery refused the
//     connection; "session lost": announcing it again after the gateway's
//     presence lease had expired failed. The client should reconnect with
//     backoff.
//   - 1012 "service restart": the gateway is draining; reconnect anywhere.
//   - 1013 "try again later": the client read too slowly and its write
//     queue overflowed; nothing is lost, unacked messages come again.
//   - 4401 "token expired": the token's exp (or the auth hook's expiry)
//     passed, give or take auth.Leeway; the client reconnects with a fresh
//     token and nothing unacked is lost.
package ws

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	deliveryv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/delivery/v1"
	presencev1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/presence/v1"
	routerv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/router/v1"
	"github.com/bachata-chat/bachata/services/gateway/internal/auth"
	"github.com/bachata-chat/bachata/services/gateway/internal/origin"
	"github.com/bachata-chat/bachata/services/gateway/internal/presencewatch"
	"github.com/bachata-chat/bachata/services/gateway/internal/ratelimit"
	"github.com/bachata-chat/bachata/services/gateway/internal/session"
	"github.com/bachata-chat/bachata/services/gateway/internal/wsio"
)

// Options tunes the endpoint.
type Options struct {
	// GatewayID names this gateway to presence and delivery. Required.
	GatewayID string
	// PingInterval is how long a connection may be silent before the
	// server sends {"type":1001}. Required.
	PingInterval time.Duration
	// IdleTimeout closes a connection silent this long with 1001.
	// Required; more than PingInterval.
	IdleTimeout time.Duration
	// RPCTimeout bounds every call to a peer service. Required.
	RPCTimeout time.Duration
	// IO tunes the sockets: message size limit, write queue and timeout.
	IO wsio.Options
	// DrainBatch connections are closed every DrainInterval while
	// draining, so clients do not all reconnect at the same instant;
	// defaults 500 and 50ms.
	DrainBatch    int
	DrainInterval time.Duration
	// ReceiptAckers bounds the receipt confirmations (delivery Ack with
	// receipt_ids) in flight at once; default 256.
	ReceiptAckers int
	// Limiter bounds each user's data messages; nil does not limit.
	Limiter *ratelimit.Limiter
	// MaxUserConns bounds the devices one user may have connected to this
	// gateway at once; a reconnecting device always gets in. 0 does not
	// limit.
	MaxUserConns int
	// Origins are the browser origins allowed to connect; nil allows any.
	Origins *origin.Policy
	// Presence serves presence.subscribe and presence.unsubscribe; nil
	// leaves them to the router (which knows no such route: 4100).
	Presence *presencewatch.Watcher
	// ServerName completes bare usernames in presence requests.
	ServerName string
	// Tracer makes the gateway's spans (ws.receive, ws.write); nil when
	// tracing is off, which skips all span work.
	Tracer trace.Tracer
}

// Peers are the gRPC clients of the services the gateway calls.
type Peers struct {
	// Router routes data messages.
	Router routerv1.RouterServiceClient
	// Delivery is told about attaches, detaches and acks.
	Delivery deliveryv1.DeliveryServiceClient
	// Presence is told about connects and disconnects.
	Presence presencev1.PresenceServiceClient
}

// Server is the WebSocket endpoint and the owner of every connection on
// this gateway.
//
// Lock order: Server.mu, then a registry shard lock, then wsio.Conn's lock.
// None is held while calling a peer service.
type Server struct {
	opts    Options
	auth    auth.Authenticator
	peers   Peers
	log     *slog.Logger
	metrics *Metrics
	reg     *session.Registry[*client]
	// base is the parent of every call's context; it ends only on a hard
	// stop, so close paths still run while draining.
	base context.Context

	// mu guards draining, acksClosed and the Add side of conns and
	// ackers, so Drain's Waits never race an Add.
	mu         sync.Mutex
	draining   bool
	acksClosed bool
	conns      sync.WaitGroup // connections, from upgrade to the end of their close path
	ackers     sync.WaitGroup // receipt confirmations in flight
	ackSlots   chan struct{}
}

// NewServer returns the endpoint. base is the context every peer call
// derives from; cancel it only to abandon calls on a hard stop.
func NewServer(base context.Context, opts Options, a auth.Authenticator, peers Peers, logger *slog.Logger, metrics *Metrics) *Server {
	if opts.DrainBatch <= 0 {
		opts.DrainBatch = 500
	}
	if opts.DrainInterval <= 0 {
		opts.DrainInterval = 50 * time.Millisecond
	}
	if opts.ReceiptAckers <= 0 {
		opts.ReceiptAckers = 256
	}
	return &Server{
		opts:     opts,
		auth:     a,
		peers:    peers,
		log:      logger,
		metrics:  metrics,
		reg:      session.New[*client](),
		base:     base,
		ackSlots: make(chan struct{}, opts.ReceiptAckers),
	}
}

// Handler returns the endpoint's routes: GET /ws.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", s.serveWS)
	return mux
}

// Connections is the number of registered connections.
func (s *Server) Connections() int { return s.reg.Len() }

// rpcContext bounds one call to a peer service. It derives from the
// server's base context, never from a connection's, so a close path runs
// to the end even after its connection is gone.
func (s *Server) rpcContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.base, s.opts.RPCTimeout)
}
