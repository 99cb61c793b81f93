// Package redisx opens Redis clients from the URLs operators configure,
// with the services' error metrics and, when tracing is on, a span per
// command inside a traced operation.
package redisx

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"

	"github.com/bachata-chat/bachata/libs/obs"
)

// Option adjusts the client Open builds.
type Option func(*options)

type options struct {
	poolSize int
	metrics  *Metrics
	tracing  bool
}

// WithPoolSize sets the connection pool size (per node in a cluster): a
// client for blocking calls needs one connection per concurrent call.
func WithPoolSize(n int) Option { return func(o *options) { o.poolSize = n } }

// WithMetrics counts the client's failed commands on m.
func WithMetrics(m *Metrics) Option { return func(o *options) { o.metrics = m } }

// WithTracing adds a client span per command (EVALSHA, BLMOVE, …) and per
// pipeline when tracing is on (obs.TracingEnabled), but only inside a
// trace: a command whose context holds no span starts none, so background
// loops do not make a trace per poll. Spans carry the command name, never
// its arguments, which hold message bodies.
func WithTracing() Option { return func(o *options) { o.tracing = true } }

// Open returns a client for url and checks that the server answers. A
// "redis://", "rediss://" or "unix://" URL opens a single server; a URL
// with the scheme "redis+cluster://host:port,host:port,…" (the seed nodes)
// opens a Redis Cluster client.
func Open(ctx context.Context, url string, opts ...Option) (redis.UniversalClient, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	var c redis.UniversalClient
	switch {
	case strings.HasPrefix(url, "redis+cluster://"):
		addrs := strings.Split(strings.TrimPrefix(url, "redis+cluster://"), ",")
		c = redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, PoolSize: o.poolSize})
	case strings.HasPrefix(url, "redis://"), strings.HasPrefix(url, "rediss://"), strings.HasPrefix(url, "unix://"):
		ro, err := redis.ParseURL(url)
		if err != nil {
			return nil, fmt.Errorf("redis url: %w", err)
		}
		if o.poolSize > 0 {
			ro.PoolSize = o.poolSize
		}
		c = redis.NewClient(ro)
	default:
		return nil, fmt.Errorf("redis url %q: want redis://host:port/db or redis+cluster://host:port,host:port", url)
	}
	if o.metrics != nil {
		c.AddHook(errorHook{m: o.metrics})
	}
	if o.tracing && obs.TracingEnabled() {
		if err := redisotel.InstrumentTracing(c,
			redisotel.WithTracerProvider(obs.ChildOnly(otel.GetTracerProvider())),
			redisotel.WithDBStatement(false),
			redisotel.WithCallerEnabled(false),
		); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("redis tracing: %w", err)
		}
	}
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("redis ping %s: %w", url, err)
	}
	return c, nil
}
