package redisx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Metrics count a service's failed Redis commands.
type Metrics struct {
	errors *prometheus.CounterVec
}

// NewMetrics registers the Redis error counter on reg. Share one Metrics
// between the clients of a service.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{errors: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "bachata", Subsystem: "redis", Name: "errors_total",
		Help: "Failed Redis commands, by command (pipelines count each failed command); a nil reply is no error.",
	}, []string{"command"})}
	if err := reg.Register(m.errors); err != nil {
		return nil, fmt.Errorf("register redis metrics: %w", err)
	}
	// Scripts are most of the traffic: their series starts at zero, so the
	// family exists on /metrics before the first failure.
	m.errors.WithLabelValues("evalsha")
	return m, nil
}

// errorHook counts failed commands. The label is the command's name, from
// the code's own fixed set (scripts run as "evalsha"), so it is bounded.
type errorHook struct{ m *Metrics }

var _ redis.Hook = errorHook{}

func (h errorHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil && ctx.Err() == nil {
			h.m.errors.WithLabelValues("dial").Inc()
		}
		return conn, err
	}
}

func (h errorHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.count(ctx, cmd, err)
		return err
	}
}

func (h errorHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, c := range cmds {
			h.count(ctx, c, c.Err())
		}
		return err
	}
}

// count records err unless it is no failure: a nil reply; the caller
// giving up (its context ended), which says nothing about Redis; a script
// not cached yet (NOSCRIPT, which go-redis answers by sending the script);
// a script's own refusal (NOTOWNER: a shard lease moved on); or the
// connection handshake's HELLO and CLIENT SETINFO, which older servers
// refuse and go-redis does without.
func (h errorHook) count(ctx context.Context, cmd redis.Cmder, err error) {
	if err == nil || errors.Is(err, redis.Nil) || ctx.Err() != nil ||
		redis.HasErrorPrefix(err, "NOSCRIPT") || redis.HasErrorPrefix(err, "NOTOWNER") {
		return
	}
	name := strings.ToLower(cmd.Name())
	if name == "hello" || name == "client" {
		return
	}
	h.m.errors.WithLabelValues(name).Inc()
}
