// Package config loads the delivery service's settings from flags and
// BACHATA_* environment variables.
package config

import (
	"net"
	"strings"
	"time"

	libconfig "github.com/bachata-chat/bachata/libs/config"
)

// Config is the delivery service's settings; every field documents its
// default.
type Config struct {
	// GRPCAddr serves DeliveryService; default ":9082".
	GRPCAddr string
	// HTTPAddr serves /healthz, /readyz and /metrics; default ":8182".
	HTTPAddr string
	// RedisURL is the queue store; default "redis://127.0.0.1:6379/0".
	RedisURL string
	// NATSURL carries deliveries to gateways; default "nats://127.0.0.1:4222".
	NATSURL string
	// NATSPrefix starts every subject; default "bachata".
	NATSPrefix string
	// RedisPrefix starts every key; default "bachata".
	RedisPrefix string
	// Window is how many messages a device may have in flight; default 64.
	Window int
	// DedupeTTL is how long an accepted (sender, id) is remembered so a
	// resend is not delivered twice; default 24h.
	DedupeTTL time.Duration
	// ShutdownTimeout bounds the graceful stop; default 10s.
	ShutdownTimeout time.Duration
	// LogLevel and LogFormat configure the logger; defaults "info", "json".
	LogLevel, LogFormat string
}

// Load reads the settings from args (without the program name) and getenv,
// and validates them, reporting every problem at once.
func Load(args []string, getenv func(string) string) (Config, *libconfig.Set, error) {
	var c Config
	s := libconfig.New("delivery", getenv)
	s.String(&c.GRPCAddr, "grpc-addr", "BACHATA_GRPC_ADDR", ":9082", "gRPC listen address")
	s.String(&c.HTTPAddr, "http-addr", "BACHATA_HTTP_ADDR", ":8182", "health and metrics listen address")
	s.String(&c.RedisURL, "redis-url", "REDIS_URL", "redis://127.0.0.1:6379/0", "Redis URL (redis://… or redis+cluster://host:port,…)")
	s.String(&c.NATSURL, "nats-url", "NATS_URL", "nats://127.0.0.1:4222", "NATS URL")
	s.String(&c.NATSPrefix, "nats-prefix", "BACHATA_NATS_PREFIX", "bachata", "prefix of every NATS subject")
	s.String(&c.RedisPrefix, "redis-prefix", "BACHATA_REDIS_PREFIX", "bachata", "prefix of every Redis key")
	s.Int(&c.Window, "window", "BACHATA_DELIVERY_WINDOW", 64, "messages in flight per device")
	s.Duration(&c.DedupeTTL, "dedupe-ttl", "BACHATA_DEDUPE_TTL", 24*time.Hour, "how long a resent id is recognised")
	s.Duration(&c.ShutdownTimeout, "shutdown-timeout", "BACHATA_SHUTDOWN_TIMEOUT", 10*time.Second, "bound on graceful shutdown")
	s.String(&c.LogLevel, "log-level", "BACHATA_LOG_LEVEL", "info", "debug, info, warn or error")
	s.String(&c.LogFormat, "log-format", "BACHATA_LOG_FORMAT", "json", "json or text")
	if err := s.Parse(args); err != nil {
		return c, s, err
	}
	return c, s, c.Validate()
}

// Validate reports every invalid setting.
func (c Config) Validate() error {
	var p libconfig.Problems
	for name, addr := range map[string]string{"grpc-addr": c.GRPCAddr, "http-addr": c.HTTPAddr} {
		_, _, err := net.SplitHostPort(addr)
		p.Addf(err != nil, "%s %q: want host:port", name, addr)
	}
	p.Addf(!strings.HasPrefix(c.RedisURL, "redis://") && !strings.HasPrefix(c.RedisURL, "rediss://") &&
		!strings.HasPrefix(c.RedisURL, "redis+cluster://") && !strings.HasPrefix(c.RedisURL, "unix://"),
		"redis-url %q: want redis://, rediss://, unix:// or redis+cluster://", c.RedisURL)
	p.Addf(!strings.HasPrefix(c.NATSURL, "nats://") && !strings.HasPrefix(c.NATSURL, "tls://"),
		"nats-url %q: want nats:// or tls://", c.NATSURL)
	p.Addf(c.NATSPrefix == "" || strings.ContainsAny(c.NATSPrefix, " *>"), "nats-prefix %q: want a non-empty subject token", c.NATSPrefix)
	p.Addf(c.RedisPrefix == "" || strings.ContainsAny(c.RedisPrefix, "{}"), "redis-prefix %q: want non-empty, without braces", c.RedisPrefix)
	p.Addf(c.Window < 1 || c.Window > 10000, "window %d: want 1..10000", c.Window)
	p.Addf(c.DedupeTTL < time.Minute, "dedupe-ttl %s: want at least 1m", c.DedupeTTL)
	p.Addf(c.ShutdownTimeout <= 0, "shutdown-timeout %s: want > 0", c.ShutdownTimeout)
	return p.Err()
}
