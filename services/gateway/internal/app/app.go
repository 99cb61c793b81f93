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

	"github.com/bachata-chat/bachata/libs/entity"
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

	nc, err := natsx.Connect(ctx, cfg.NATSURL, "gateway "+cfg.GatewayID, logger)
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

	health := &obs.Health{}
	reg := obs.NewRegistry()
	peers := ws.Peers{
		Router:   routerv1.NewRouterServiceClient(routerCC),
		Delivery: deliveryv1.NewDeliveryServiceClient(deliveryCC),
		Presence: presencev1.NewPresenceServiceClient(presenceCC),
	}
	base, endCalls := context.WithCancel(context.WithoutCancel(ctx))
	adminMux := obs.AdminMux(health, reg)
	adminapi.Register(adminMux, adminapi.Options{
		Token:      cfg.AdminToken,
		Router:     peers.Router,
		Groups:     deliveryv1.NewGroupServiceClient(deliveryCC),
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
		},
		Limiter: ratelimit.New(ratelimit.Options{
			Rate:         float64(cfg.RateLimit),
			Burst:        cfg.RateBurst,
			Strikes:      cfg.RateStrikes,
			StrikeWindow: 10 * time.Second,
		}),
	}, auth.NewHS256([]byte(cfg.JWTSecret), cfg.ServerName, entity.ValidLocal), peers, logger, ws.NewMetrics(reg))

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
		wsHTTP:      obs.NewHTTPServer(wsLis, srv.Handler(), cfg.ShutdownTimeout),
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
	}, nil
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
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
	defer cancel()
	stopWS()
	select {
	case <-wsStopped:
	case <-sctx.Done():
	}
	if err := a.ws.Drain(sctx); err != nil {
		a.log.WarnContext(ctx, "websocket drain cut short", "err", err)
	}
	for _, s := range []*nats.Subscription{sub, kicks} {
		if err := s.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			a.log.WarnContext(ctx, "nats unsubscribe failed", "subject", s.Subject, "err", err)
		}
	}
	endLife()
	<-adminStopped
	<-hbStopped
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

// close ends every call still in flight and closes the clients and the
// listeners (already closed after a normal stop; the error is moot).
func (a *App) close() {
	a.endCalls()
	for _, l := range a.listeners {
		_ = l.Close()
	}
	for _, cc := range a.grpc {
		_ = cc.Close()
	}
	a.nc.Close()
}

// onDeliveries decodes a DeliveryBatch published by delivery and hands it
// to the endpoint. NATS calls it from one goroutine, in publish order.
func (a *App) onDeliveries(m *nats.Msg) {
	batch, err := decodeBatch(m.Data)
	if err != nil {
		a.log.Error("delivery batch not decodable", "subject", m.Subject, "bytes", len(m.Data), "err", err)
		return
	}
	a.ws.Deliver(batch)
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
