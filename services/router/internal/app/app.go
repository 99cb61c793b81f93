// Package app wires the router service: the route chain, the delivery
// client, the gRPC API and the admin endpoints.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"

	"github.com/bachata-chat/bachata/libs/grpcx"
	"github.com/bachata-chat/bachata/libs/natsx"
	"github.com/bachata-chat/bachata/libs/obs"
	"github.com/bachata-chat/bachata/libs/run"
	deliveryv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/delivery/v1"
	routerv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/router/v1"
	"github.com/bachata-chat/bachata/services/router/chain"
	"github.com/bachata-chat/bachata/services/router/internal/config"
	"github.com/bachata-chat/bachata/services/router/internal/routing"
)

// App is a wired router, ready to Run. The router keeps no state of its own,
// so any number of them can serve behind one name.
type App struct {
	logger   *slog.Logger
	health   *obs.Health
	delivery *grpc.ClientConn
	// nats is set when the chain has a route that needs it.
	nats  *nats.Conn
	grpc  *grpcx.Server
	admin *obs.HTTPServer
	chain *chain.Chain
}

// New builds the router from cfg: the chain from its routes (looked up in
// routes, the built-in ones when nil), a lazily
// connecting delivery client, NATS when a route needs it, and both
// listeners. It closes what it
// opened when a later step fails.
func New(ctx context.Context, cfg config.Config, logger *slog.Logger, routes *chain.Registry) (_ *App, err error) {
	a := &App{logger: logger, health: &obs.Health{}}
	var glis, hlis net.Listener
	defer func() {
		if err != nil {
			closeAll(glis, hlis)
			a.close()
		}
	}()
	// Dial does not connect: the router starts, and reports ready, before
	// delivery is up; a message routed meanwhile gets Unavailable and the
	// client resends it.
	if a.delivery, err = grpcx.Dial(cfg.DeliveryAddr); err != nil {
		return nil, fmt.Errorf("router: delivery client: %w", err)
	}
	deps := chain.Deps{
		ServerName: cfg.ServerName,
		Logger:     logger,
		Subjects:   natsx.Subjects{Prefix: cfg.NATSPrefix},
		Members:    deliveryv1.NewGroupServiceClient(a.delivery),
	}
	reg := obs.NewRegistry()
	if chain.NeedsNATS(cfg.Routes) {
		natsMetrics, err := natsx.NewMetrics(reg)
		if err != nil {
			return nil, fmt.Errorf("router: %w", err)
		}
		if a.nats, err = natsx.Connect(ctx, cfg.NATSURL, "router", logger, natsx.WithMetrics(natsMetrics)); err != nil {
			return nil, fmt.Errorf("router: %w", err)
		}
		deps.NATS = a.nats
	}
	if routes == nil {
		routes = chain.NewRegistry()
	}
	if a.chain, err = routes.Build(deps, cfg.Routes); err != nil {
		return nil, fmt.Errorf("router: chain: %w", err)
	}
	if err = reg.Register(a.chain); err != nil {
		return nil, fmt.Errorf("router: register chain metrics: %w", err)
	}
	svc, err := routing.New(routing.Options{
		Chain:          a.chain,
		Delivery:       deliveryv1.NewDeliveryServiceClient(a.delivery),
		RequireSign:    cfg.RequireSign,
		EnqueueTimeout: cfg.EnqueueTimeout,
		Logger:         logger,
		Registerer:     reg,
	})
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	var lc net.ListenConfig
	if glis, err = lc.Listen(ctx, "tcp", cfg.GRPCAddr); err != nil {
		return nil, fmt.Errorf("router: listen grpc: %w", err)
	}
	if hlis, err = lc.Listen(ctx, "tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("router: listen http: %w", err)
	}
	a.grpc = grpcx.NewServer(glis, logger, cfg.ShutdownTimeout)
	if err = reg.Register(a.grpc); err != nil {
		return nil, fmt.Errorf("router: register grpc metrics: %w", err)
	}
	routerv1.RegisterRouterServiceServer(a.grpc.Server, svc)
	a.admin = obs.NewHTTPServer(hlis, obs.AdminMux(a.health, reg), cfg.ShutdownTimeout)
	return a, nil
}

// GRPCAddr is where RouterService listens.
func (a *App) GRPCAddr() net.Addr { return a.grpc.Addr() }

// HTTPAddr is where /healthz, /readyz and /metrics listen.
func (a *App) HTTPAddr() net.Addr { return a.admin.Addr() }

// Run serves until ctx ends (or a part fails), then stops in order: not
// ready; gRPC graceful stop, bounded by the shutdown timeout; the admin
// listener, kept until then so probes see 503 on /readyz while calls drain;
// last the delivery client, which draining calls still use.
//
// Readiness does not follow delivery's health on purpose: a router whose
// delivery is down still answers handshakes and rejects bad messages, and
// tying readiness to a shared dependency would take every router out at
// once.
func (a *App) Run(ctx context.Context) error {
	defer a.close()
	adminCtx, stopAdmin := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAdmin()
	a.health.SetReady(true)
	a.logger.InfoContext(ctx, "router ready",
		"grpc", a.grpc.Addr().String(), "http", a.admin.Addr().String(), "routes", a.chain.Names())
	err := run.All(ctx,
		run.Part{Name: "grpc", Run: func(ctx context.Context) error {
			// Not ready from the moment the stop begins, while the gRPC
			// server still drains.
			notReady := context.AfterFunc(ctx, func() { a.health.SetReady(false) })
			err := a.grpc.Run(ctx)
			if notReady() { // the server failed on its own
				a.health.SetReady(false)
			}
			stopAdmin()
			return err
		}},
		// The admin listener ignores the group's context: it stops when the
		// gRPC part is done, which a failure of either part brings about.
		run.Part{Name: "admin", Run: func(context.Context) error { return a.admin.Run(adminCtx) }},
	)
	a.logger.InfoContext(ctx, "router stopped")
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func (a *App) close() {
	_ = a.chain.Close() // hook routes' connections; a nil chain (New failed early) is fine
	if a.delivery != nil {
		_ = a.delivery.Close()
	}
	if a.nats != nil {
		a.nats.Close()
	}
}

func closeAll(listeners ...net.Listener) {
	for _, l := range listeners {
		if l != nil {
			_ = l.Close()
		}
	}
}
