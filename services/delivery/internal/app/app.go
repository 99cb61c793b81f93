// Package app wires the delivery service: Redis queues, the NATS publisher
// that reaches gateways, the gRPC API and the admin endpoints.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/bachata-chat/bachata/libs/grpcx"
	"github.com/bachata-chat/bachata/libs/natsx"
	"github.com/bachata-chat/bachata/libs/obs"
	"github.com/bachata-chat/bachata/libs/redisx"
	"github.com/bachata-chat/bachata/libs/run"
	deliveryv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/delivery/v1"
	"github.com/bachata-chat/bachata/services/delivery/internal/config"
	"github.com/bachata-chat/bachata/services/delivery/internal/dispatch"
	"github.com/bachata-chat/bachata/services/delivery/internal/queue"
	"github.com/bachata-chat/bachata/services/delivery/internal/shard"
)

// statsEvery is how often each owned shard's sizes are read for the queue
// gauges: often enough for a dashboard, a handful of O(1) commands per
// owned shard.
const statsEvery = 5 * time.Second

// App is a wired delivery service, ready to Run.
type App struct {
	cfg    config.Config
	logger *slog.Logger
	health *obs.Health
	redis  redis.UniversalClient
	// blocking serves the shard workers' blocking waits.
	blocking redis.UniversalClient
	shards   *shard.Owner
	nats     *nats.Conn
	grpc     *grpcx.Server
	admin    *obs.HTTPServer
	disp     *dispatch.Service
}

// New connects to Redis and NATS and builds the servers. It closes what it
// opened when a later step fails.
func New(ctx context.Context, cfg config.Config, logger *slog.Logger) (*App, error) {
	a := &App{cfg: cfg, logger: logger, health: &obs.Health{}}
	if err := a.wire(ctx); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

func (a *App) wire(ctx context.Context) error {
	cfg, logger := a.cfg, a.logger
	var err error
	reg := obs.NewRegistry()
	redisMetrics, err := redisx.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("delivery: %w", err)
	}
	natsMetrics, err := natsx.NewMetrics(reg)
	if err != nil {
		return fmt.Errorf("delivery: %w", err)
	}
	if a.redis, err = redisx.Open(ctx, cfg.RedisURL, redisx.WithMetrics(redisMetrics), redisx.WithTracing()); err != nil {
		return fmt.Errorf("delivery: %w", err)
	}
	if a.nats, err = natsx.Connect(ctx, cfg.NATSURL, "delivery", logger, natsx.WithMetrics(natsMetrics)); err != nil {
		return fmt.Errorf("delivery: %w", err)
	}
	// The shard workers block in BLMOVE, one connection each; they get a
	// client of their own so the API calls never wait for a connection.
	// It is not traced: its waits belong to no message.
	if a.blocking, err = redisx.Open(ctx, cfg.RedisURL, redisx.WithPoolSize(cfg.Shards+2), redisx.WithMetrics(redisMetrics)); err != nil {
		return fmt.Errorf("delivery: %w", err)
	}
	store, err := queue.New(a.redis, queue.Options{
		Prefix:           cfg.RedisPrefix,
		Shards:           cfg.Shards,
		DedupeTTL:        cfg.DedupeTTL,
		Window:           cfg.Window,
		Visibility:       cfg.Visibility,
		MaxAttempts:      cfg.MaxAttempts,
		MaxQueueLength:   cfg.MaxQueueLength,
		MaxAge:           cfg.MaxAge,
		UndeliveredAfter: cfg.UndeliveredAfter,
	})
	if err != nil {
		return fmt.Errorf("delivery: %w", err)
	}
	a.disp, err = dispatch.New(store, a.nats, natsx.Subjects{Prefix: cfg.NATSPrefix}, logger, reg)
	if err != nil {
		return fmt.Errorf("delivery: %w", err)
	}
	a.shards = shard.New(store, a.blocking, a.disp.Publisher(), shard.Options{
		Instance:    cfg.Instance,
		Lease:       cfg.ShardLease,
		ExpireEvery: cfg.ExpireEvery,
		Batch:       256,
		StatsEvery:  statsEvery,
	}, logger)
	if err := reg.Register(a.shards); err != nil {
		return fmt.Errorf("delivery: register shard metrics: %w", err)
	}
	var lc net.ListenConfig
	glis, err := lc.Listen(ctx, "tcp", cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("delivery: listen grpc: %w", err)
	}
	a.grpc = grpcx.NewServer(glis, logger, cfg.ShutdownTimeout)
	if err := reg.Register(a.grpc); err != nil {
		_ = glis.Close()
		return fmt.Errorf("delivery: register grpc metrics: %w", err)
	}
	deliveryv1.RegisterDeliveryServiceServer(a.grpc.Server, a.disp)
	deliveryv1.RegisterGroupServiceServer(a.grpc.Server, dispatch.NewGroups(store))
	hlis, err := lc.Listen(ctx, "tcp", cfg.HTTPAddr)
	if err != nil {
		_ = glis.Close()
		return fmt.Errorf("delivery: listen http: %w", err)
	}
	a.admin = obs.NewHTTPServer(hlis, obs.AdminMux(a.health, reg), cfg.ShutdownTimeout)
	return nil
}

// GRPCAddr is where the gRPC API listens.
func (a *App) GRPCAddr() net.Addr { return a.grpc.Addr() }

// HTTPAddr is where the admin endpoints listen.
func (a *App) HTTPAddr() net.Addr { return a.admin.Addr() }

// Run serves until ctx ends, then stops: readiness goes false, and the gRPC
// server (gracefully), the admin server, the gateway-down subscription and
// the shard owner (handing its shards over) stop together; then NATS is
// flushed and closed, and Redis closed.
func (a *App) Run(ctx context.Context) error {
	defer a.close()
	a.health.SetReady(true)
	a.logger.InfoContext(ctx, "delivery ready", "grpc", a.grpc.Addr().String(), "http", a.admin.Addr().String())
	err := run.All(ctx,
		run.Part{Name: "readiness", Run: func(ctx context.Context) error {
			// Not ready the moment shutdown starts, while calls drain.
			<-ctx.Done()
			a.health.SetReady(false)
			return nil
		}},
		run.Part{Name: "grpc", Run: a.grpc.Run},
		run.Part{Name: "admin", Run: a.admin.Run},
		run.Part{Name: "gateway-down", Run: a.disp.WatchGatewayDown},
		run.Part{Name: "shards", Run: a.shards.Run},
	)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	a.logger.InfoContext(ctx, "delivery stopped")
	return nil
}

func (a *App) close() {
	if a.nats != nil {
		// Flush so deliveries already published reach the server; they are
		// still in flight in Redis if they do not.
		_ = a.nats.FlushTimeout(a.cfg.ShutdownTimeout)
		a.nats.Close()
	}

	if a.redis != nil {
		_ = a.redis.Close()
	}
	if a.blocking != nil {
		_ = a.blocking.Close()
	}
}
