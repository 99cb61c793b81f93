// Package app wires the gateway: listeners, NATS, gRPC clients, the
// WebSocket endpoint, the presence heartbeat and the ordered, bounded
// shutdown.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/bachata-chat/bachata/libs/grpcx"
	"github.com/bachata-chat/bachata/libs/natsx"
	"github.com/bachata-chat/bachata/libs/obs"
	deliveryv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/delivery/v1"
	eventsv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/events/v1"
	presencev1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/presence/v1"
	routerv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/router/v1"
	"github.com/bachata-chat/bachata/services/gateway/internal/adminapi"
	"github.com/bachata-chat/bachata/services/gateway/internal/auth"
	"github.com/bachata-chat/bachata/services/gateway/internal/config"
	"github.com/bachata-chat/bachata/services/gateway/internal/origin"
	"github.com/bachata-chat/bachata/services/gateway/internal/presencewatch"
	"github.com/bachata-chat/bachata/services/gateway/internal/ratelimit"
	"github.com/bachata-chat/bachata/services/gateway/internal/ws"
	"github.com/bachata-chat/bachata/services/gateway/internal/wsio"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// App is a wired gateway, ready to Run.
type App struct {
	cfg     config.Config
	log     *slog.Logger
	health  *obs.Health
	metrics *prometheus.Registry
	wsHTTP  *obs.HTTPServer
	admin   *obs.HTTPServer
	// listeners are closed by close too, for a Run that failed before
	// serving them.
	listeners []net.Listener
	nc        *nats.Conn
	grpc      []*grpc.ClientConn
	presence  presencev1.PresenceServiceClient
	ws        *ws.Server
	subject   string
	// kickSubject carries the admin API's kicks for this gateway.
	kickSubject string
	// endCalls cancels the base context of every peer call: the hard stop
	// once shutdown is over.
	endCalls context.CancelFunc
	// hbFailures counts failed heartbeats.
	hbFailures prometheus.Counter
	// jwks keeps the JWKS key set fresh while Run runs; nil without a
	// JWKS URL.
	jwks *auth.JWKS
	// watcher serves presence subscriptions; closed after the drain.
	watcher *presencewatch.Watcher
	// poller reads the WebSocket connections; nil when a goroutine per
	// connection does. Closed after the drain.
	poller *wsio.Poller
}

// New opens the listeners and the clients. Nothing is half built: on error
// everything opened so far is closed.
func New(ctx context.Context, cfg config.Config, logger *slog.Logger) (a *App, err error) {
	var closers []func()
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
	}()
	var lc net.ListenConfig
	wsLis, err := lc.Listen(ctx, "tcp", cfg.WSAddr)
	if err != nil {
		return nil, fmt.Errorf("listen websocket %s: %w", cfg.WSAddr, err)
	}
	closers = append(closers, func() { _ = wsLis.Close() })
	adminLis, err := lc.Listen(ctx, "tcp", cfg.AdminAddr)
	if err != nil {
		return nil, fmt.Errorf("listen admin %s: %w", cfg.AdminAddr, err)
	}
	closers = append(closers, func() { _ = adminLis.Close() })

	reg := obs.NewRegistry()
	natsMetrics, err := natsx.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	nc, err := natsx.Connect(ctx, cfg.NATSURL, "gateway "+cfg.GatewayID, logger, natsx.WithMetrics(natsMetrics))
	if err != nil {
		return nil, err
	}
	closers = append(closers, nc.Close)
	var conns []*grpc.ClientConn
	dial := func(target string) (*grpc.ClientConn, error) {
		cc, err := grpcx.Dial(target)
		if err != nil {
			return nil, err
		}
		conns = append(conns, cc)
		closers = append(closers, func() { _ = cc.Close() })
		return cc, nil
	}
	routerCC, err := dial(cfg.RouterAddr)
	if err != nil {
		return nil, err
	}
	deliveryCC, err := dial(cfg.DeliveryAddr)
	if err != nil {
		return nil, err
	}
	presenceCC, err := dial(cfg.PresenceAddr)
	if err != nil {
		return nil, err
	}

	authn, err := newAuthenticator(cfg, dial, logger)
	if err != nil {
		return nil, err
	}
	origins, err := origin.Parse(cfg.AllowedOrigins)
	if err != nil {
		return nil, fmt.Errorf("allowed origins: %w", err)
	}
	health := &obs.Health{}
	peers := ws.Peers{
		Router:   routerv1.NewRouterServiceClient(routerCC),
		Delivery: deliveryv1.NewDeliveryServiceClient(deliveryCC),
		Presence: presencev1.NewPresenceServiceClient(presenceCC),
	}
	watcher, err := presencewatch.New(presencewatch.Options{
		NATS:             nc,
		Subjects:         natsx.Subjects{Prefix: cfg.NATSPrefix},
		Query:            presenceQuery(peers.Presence),
		Coalesce:         cfg.PresenceCoalesce,
		MaxPerSubscriber: cfg.PresenceMaxWatch,
		Logger:           logger,
		Registerer:       reg,
	})
	if err != nil {
		return nil, err
	}
	closers = append(closers, watcher.Close)
	poller, err := newPoller(cfg.WSReader, logger)
	if err != nil {
		return nil, err
	}
	if poller != nil {
		closers = append(closers, func() { _ = poller.Close() })
	}
	base, endCalls := context.WithCancel(context.WithoutCancel(ctx))
	adminMux := obs.AdminMux(health, reg)
	groups := deliveryv1.NewGroupServiceClient(deliveryCC)
	adminapi.Register(adminMux, adminapi.Options{
		Token:      cfg.AdminToken,
		Router:     peers.Router,
		Groups:     groups,
		Presence:   peers.Presence,
		NATS:       nc,
		NATSPrefix: cfg.NATSPrefix,
		ServerName: cfg.ServerName,
		Timeout:    cfg.RPCTimeout,
		MaxBody:    int64(cfg.MaxFrame),
		Logger:     logger,
	})
	srv := ws.NewServer(base, ws.Options{
		GatewayID:    cfg.GatewayID,
		PingInterval: cfg.PingInterval,
		IdleTimeout:  cfg.IdleTimeout,
		RPCTimeout:   cfg.RPCTimeout,
		IO: wsio.Options{
			MaxMessage:   cfg.MaxFrame,
			QueueBytes:   cfg.QueueBytes,
			WriteTimeout: cfg.WriteTimeout,
			Poller:       poller,
		},
		Limiter: ratelimit.New(ratelimit.Options{
			Rate:         float64(cfg.RateLimit),
			Burst:        cfg.RateBurst,
			Strikes:      cfg.RateStrikes,
			StrikeWindow: 10 * time.Second,
		}),
		MaxUserConns: cfg.MaxUserConns,
		Origins:      origins,
		Presence:     watcher,
		ServerName:   cfg.ServerName,
		Tracer:       obs.Tracer("github.com/bachata-chat/bachata/services/gateway"),
	}, authn, peers, logger, ws.NewMetrics(reg))
	public, err := publicHandler(cfg, srv.Handler(), groups, origins, logger)
	if err != nil {
		endCalls()
		return nil, err
	}

	hbFailures := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "bachata", Subsystem: "gateway", Name: "heartbeat_failures_total",
		Help: "Presence heartbeats that failed; three in a row lose the lease.",
	})
	reg.MustRegister(hbFailures)

	return &App{
		cfg:         cfg,
		log:         logger,
		health:      health,
		metrics:     reg,
		wsHTTP:      obs.NewHTTPServer(wsLis, public, cfg.ShutdownTimeout),
		listeners:   []net.Listener{wsLis, adminLis},
		admin:       obs.NewHTTPServer(adminLis, adminMux, cfg.ShutdownTimeout),
		nc:          nc,
		grpc:        conns,
		presence:    peers.Presence,
		ws:          srv,
		subject:     natsx.Subjects{Prefix: cfg.NATSPrefix}.GatewayDeliveries(cfg.GatewayID),
		kickSubject: natsx.Subjects{Prefix: cfg.NATSPrefix}.GatewayKick(cfg.GatewayID),
		endCalls:    endCalls,
		hbFailures:  hbFailures,
		jwks:        authn.JWKS,
		watcher:     watcher,
		poller:      poller,
	}, nil
}

// newPoller returns the epoll reader when the configuration asks for it,
// or nil for a goroutine per connection, which is also the fallback where
// there is no epoll.
func newPoller(reader string, logger *slog.Logger) (*wsio.Poller, error) {
	if reader == config.ReaderGoroutine {
		return nil, nil
	}
	p, err := wsio.NewPoller()
	if errors.Is(err, wsio.ErrPollerUnsupported) {
		logger.Warn("epoll reader unavailable: reading each connection with a goroutine", "err", err)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("websocket poller: %w", err)
	}
	return p, nil
}

// WSAddr is the address the WebSocket listener is bound to.
func (a *App) WSAddr() net.Addr { return a.wsHTTP.Addr() }

// AdminAddr is the address the admin listener is bound to.
func (a *App) AdminAddr() net.Addr { return a.admin.Addr() }

// Run serves until ctx ends or a part fails, then shuts down in order
// (call it once):
// readiness false, stop accepting WebSockets, close every connection with
// 1012 in batches (running each close path), stop the NATS subscription,
// close the clients. Shutdown is bounded by the configured timeout; the
// admin listener and the presence heartbeat run until the end, so probes
// see the drain and the lease holds while connections close.
func (a *App) Run(ctx context.Context) error {
	defer a.close()
	sub, err := a.nc.Subscribe(a.subject, a.onDeliveries)
	if err != nil {
		return fmt.Errorf("nats subscribe %s: %w", a.subject, err)
	}
	kicks, err := a.nc.Subscribe(a.kickSubject, a.onKick)
	if err != nil {
		return fmt.Errorf("nats subscribe %s: %w", a.kickSubject, err)
	}
	if err := a.nc.FlushTimeout(a.cfg.RPCTimeout); err != nil {
		return fmt.Errorf("nats subscribe %s: flush: %w", a.subject, err)
	}

	life, endLife := context.WithCancel(context.WithoutCancel(ctx))
	defer endLife()
	wsCtx, stopWS := context.WithCancel(life)
	defer stopWS()
	failed := make(chan error, 2) // one per listener
	partDone := func(name string, err error) {
		if err != nil {
			failed <- fmt.Errorf("%s: %w", name, err)
		}
	}
	wsStopped := make(chan struct{})
	adminStopped := make(chan struct{})
	hbStopped := make(chan struct{})
	go func() { defer close(wsStopped); partDone("websocket", a.wsHTTP.Run(wsCtx)) }()
	go func() { defer close(adminStopped); partDone("admin", a.admin.Run(life)) }()
	// The key set loads in the background: an identity provider that is
	// down at start does not stop the gateway, whose JWKS tokens get 503
	// until the first load.
	jwksStopped := make(chan struct{})
	go func() {
		defer close(jwksStopped)
		if a.jwks != nil {
			_ = a.jwks.Run(life) // returns when life ends; failures are logged
		}
	}()
	// readyMu orders the first lease against the start of shutdown, so a
	// late lease never marks a draining gateway ready.
	var (
		readyMu  sync.Mutex
		stopping bool
	)
	go func() {
		defer close(hbStopped)
		a.heartbeat(life, func() {
			readyMu.Lock()
			defer readyMu.Unlock()
			if !stopping {
				a.health.SetReady(true)
				a.log.InfoContext(ctx, "gateway ready: presence lease held", "gateway", a.cfg.GatewayID)
			}
		})
	}()
	a.log.InfoContext(ctx, "gateway serving", "gateway", a.cfg.GatewayID, "ws", a.WSAddr().String(), "admin", a.AdminAddr().String())

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-failed:
		a.log.ErrorContext(ctx, "gateway part failed", "err", runErr)
	}

	readyMu.Lock()
	stopping = true
	a.health.SetReady(false)
	readyMu.Unlock()
	if a.cfg.DrainDelay > 0 {
		// Load balancers that watch /readyz stop sending new clients here
		// before the connections are closed, so reconnects go elsewhere.
		a.log.InfoContext(ctx, "not ready; waiting before the drain", "delay", a.cfg.DrainDelay)
		delay := time.NewTimer(a.cfg.DrainDelay)
		<-delay.C // bounded by config (at most 5m); a second signal is ignored during a stop anyway
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
	defer cancel()
	// The drain does not wait for the WebSocket listener's graceful
	// Shutdown: upgraded connections are hijacked and outside it, while a
	// socket that has not sent its request yet (a preconnect) holds it up
	// to 5s, and a request still authenticating for as long as that takes.
	// Drain refuses new upgrades with 503 from its first step, so the two
	// may overlap; wsStopped is awaited below.
	stopWS()
	if err := a.ws.Drain(sctx); err != nil {
		a.log.WarnContext(ctx, "websocket drain cut short", "err", err)
	}
	a.watcher.Close()
	for _, s := range []*nats.Subscription{sub, kicks} {
		if err := s.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			a.log.WarnContext(ctx, "nats unsubscribe failed", "subject", s.Subject, "err", err)
		}
	}
	endLife()
	<-adminStopped
	<-hbStopped
	a.releaseLease(ctx)
	<-jwksStopped
	<-wsStopped
	a.log.InfoContext(ctx, "gateway stopped", "gateway", a.cfg.GatewayID)
	if runErr == nil {
		select {
		case runErr = <-failed:
		default:
		}
	}
	return runErr
}

// releaseLease ends this gateway's presence lease once its heartbeats
// have stopped (a later heartbeat would renew it), so presence does not
// wait for it to run out. A failure only means presence sweeps the lease
// when it expires.
func (a *App) releaseLease(ctx context.Context) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.RPCTimeout)
	defer cancel()
	if _, err := a.presence.Release(rctx, &presencev1.ReleaseRequest{GatewayId: a.cfg.GatewayID}); err != nil {
		a.log.WarnContext(ctx, "presence lease not released; it will expire", "err", err)
	}
}

// close ends every call still in flight and closes the clients and the
// listeners (already closed after a normal stop; the error is moot).
func (a *App) close() {
	a.endCalls()
	a.watcher.Close() // already closed after a drain; Close is idempotent
	for _, l := range a.listeners {
		_ = l.Close()
	}
	for _, cc := range a.grpc {
		_ = cc.Close()
	}
	a.nc.Close()
	if a.poller != nil {
		// After the drain: connections left (a cut-short drain) end now.
		_ = a.poller.Close()
	}
}

// onDeliveries decodes a DeliveryBatch published by delivery and hands it
// to the endpoint, with the trace context its headers carry. NATS calls it
// from one goroutine, in publish order.
func (a *App) onDeliveries(m *nats.Msg) {
	ctx := natsx.ExtractTrace(context.Background(), m)
	batch, err := decodeBatch(m.Data)
	if err != nil {
		a.log.ErrorContext(ctx, "delivery batch not decodable", "subject", m.Subject, "bytes", len(m.Data), "err", err)
		return
	}
	a.ws.DeliverContext(ctx, batch)
}

// onKick closes the connections a Kick names.
func (a *App) onKick(m *nats.Msg) {
	var k eventsv1.Kick
	if err := proto.Unmarshal(m.Data, &k); err != nil || k.GetUser() == "" {
		a.log.Error("kick not decodable", "subject", m.Subject, "bytes", len(m.Data), "err", err)
		return
	}
	a.ws.Kick(k.GetUser(), k.GetDevice())
}

// millis is d in whole milliseconds, at least 1.
func millis(d time.Duration) int64 { return max(1, d.Milliseconds()) }

// decodeBatch decodes a NATS delivery payload.
func decodeBatch(b []byte) (*eventsv1.DeliveryBatch, error) {
	var batch eventsv1.DeliveryBatch
	if err := proto.Unmarshal(b, &batch); err != nil {
		return nil, fmt.Errorf("decode delivery batch: %w", err)
	}
	return &batch, nil
}

// presenceQuery adapts PresenceService.Query for the presence watcher.
func presenceQuery(p presencev1.PresenceServiceClient) func(context.Context, []string) ([]presencewatch.State, error) {
	return func(ctx context.Context, users []string) ([]presencewatch.State, error) {
		res, err := p.Query(ctx, &presencev1.QueryRequest{Users: users})
		if err != nil {
			return nil, fmt.Errorf("presence query: %w", err)
		}
		out := make([]presencewatch.State, 0, len(res.GetUsers()))
		for _, u := range res.GetUsers() {
			out = append(out, presencewatch.State{
				User: u.GetUser(), Online: u.GetStatus() == presencev1.Status_STATUS_ONLINE, LastSeenMs: u.GetLastSeenMs(),
			})
		}
		return out, nil
	}
}
