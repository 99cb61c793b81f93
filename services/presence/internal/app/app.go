// Package app wires the presence service: Redis, NATS, the lease tracker
// and its sweeper, the gRPC API and the admin endpoints, and stops them in
// order.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/bachata-chat/bachata/libs/grpcx"
	"github.com/bachata-chat/bachata/libs/natsx"
	"github.com/bachata-chat/bachata/libs/obs"
	"github.com/bachata-chat/bachata/libs/redisx"
	"github.com/bachata-chat/bachata/libs/run"
	presencev1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/presence/v1"
	"github.com/bachata-chat/bachata/services/presence/internal/config"
	"github.com/bachata-chat/bachata/services/presence/internal/lease"
)

// App is a wired presence service, ready to Run.
type App struct {
	cfg     config.Config
	logger  *slog.Logger
	health  *obs.Health
	redis   redis.UniversalClient
	nats    *nats.Conn
	tracker *lease.Tracker
	grpc    *grpcx.Server
	admin   *obs.HTTPServer
}

// New connects to Redis and NATS, builds the tracker and both servers, and
// binds their listeners, so the addresses are known before Run. When a step
// fails it closes what the earlier ones opened.
func New(ctx context.Context, cfg config.Config, logger *slog.Logger) (_ *App, err error) {
	// a is not the named result: the error returns set that to nil, and the
	// cleanup below still needs what was opened.
	a := &App{cfg: cfg, logger: logger, health: &obs.Health{}}
	var glis, hlis net.Listener
	defer func() {
		if err != nil {
			for _, l := range []net.Listener{glis, hlis} {
				if l != nil {
					_ = l.Close()
				}
			}
			a.close()
		}
	}()
	reg := obs.NewRegistry()
	redisMetrics, err := redisx.NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	natsMetrics, err := natsx.NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	if a.redis, err = redisx.Open(ctx, cfg.RedisURL, redisx.WithMetrics(redisMetrics), redisx.WithTracing()); err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	if a.nats, err = natsx.Connect(ctx, cfg.NATSURL, "presence", logger, natsx.WithMetrics(natsMetrics)); err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	a.tracker, err = lease.New(a.redis, a.nats, lease.Options{
		Prefix:       cfg.RedisPrefix,
		Subjects:     natsx.Subjects{Prefix: cfg.NATSPrefix},
		DefaultLease: cfg.Lease,
		SessionTTL:   cfg.SessionTTL,
		Logger:       logger,
		Registerer:   reg,
	})
	if err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	lc := net.ListenConfig{}
	if glis, err = lc.Listen(ctx, "tcp", cfg.GRPCAddr); err != nil {
		return nil, fmt.Errorf("start: listen grpc %s: %w", cfg.GRPCAddr, err)
	}
	if hlis, err = lc.Listen(ctx, "tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("start: listen http %s: %w", cfg.HTTPAddr, err)
	}
	a.grpc = grpcx.NewServer(glis, logger, cfg.ShutdownTimeout)
	if err = reg.Register(a.grpc); err != nil {
		return nil, fmt.Errorf("start: register grpc metrics: %w", err)
	}
	presencev1.RegisterPresenceServiceServer(a.grpc.Server, &api{tracker: a.tracker})
	a.admin = obs.NewHTTPServer(hlis, obs.AdminMux(a.health, reg), cfg.ShutdownTimeout)
	return a, nil
}

// GRPCAddr is where the gRPC API listens.
func (a *App) GRPCAddr() net.Addr { return a.grpc.Addr() }

// HTTPAddr is where /healthz, /readyz and /metrics listen.
func (a *App) HTTPAddr() net.Addr { return a.admin.Addr() }

// Run serves until ctx ends or a part fails, then stops in order: /readyz
// reports not ready, gRPC reports NOT_SERVING and stops gracefully (bounded
// by the shutdown timeout), the sweeper hands back what it claimed, and NATS
// (flushing what was published) and Redis are closed. It returns nil after a
// clean stop.
func (a *App) Run(ctx context.Context) error {
	defer a.close()
	a.health.SetReady(true)
	a.logger.InfoContext(ctx, "presence ready", "grpc", a.GRPCAddr().String(), "http", a.HTTPAddr().String())
	err := run.All(ctx,
		run.Part{Name: "grpc", Run: a.runGRPC},
		run.Part{Name: "admin", Run: a.admin.Run},
		run.Part{Name: "sweeper", Run: func(ctx context.Context) error {
			return a.tracker.RunSweeper(ctx, a.cfg.SweepInterval)
		}},
	)
	a.logger.InfoContext(ctx, "presence stopped")
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// runGRPC serves gRPC, turning /readyz to not ready before the graceful
// stop begins, so probes move traffic away before calls are refused.
func (a *App) runGRPC(ctx context.Context) error {
	gctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		a.health.SetReady(false)
		cancel()
	})
	defer stop()
	return a.grpc.Run(gctx)
}

// close releases the clients. NATS is flushed first, within the shutdown
// bound, so events published just before the stop still reach the server;
// presence has no subscriptions, so that is all a drain would do, and
// unlike Drain it has finished when close returns.
func (a *App) close() {
	a.health.SetReady(false)
	if a.nats != nil {
		if err := a.nats.FlushTimeout(a.cfg.ShutdownTimeout); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			a.logger.Warn("flush nats", "err", err)
		}
		a.nats.Close()
	}
	if a.redis != nil {
		if err := a.redis.Close(); err != nil {
			a.logger.Warn("close redis", "err", err)
		}
	}
}
