// Package config loads the delivery service's settings from flags and
// BACHATA_* environment variables.
package config

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
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
	// Shards is how many shards devices are hashed to; every instance of a
	// deployment must use the same value; default 32.
	Shards int
	// Visibility is how long a pushed entry may stay unacked before it is
	// pushed again, doubling with each attempt up to 64 times; default 30s.
	Visibility time.Duration
	// MaxAttempts is how often an entry is pushed before it goes to the
	// dead-letter list; default 10.
	MaxAttempts int
	// MaxQueueLength bounds each device queue, 0 for no bound; default
	// 10000.
	MaxQueueLength int
	// MaxAge bounds how long an entry waits for its ack, 0 for no bound;
	// default 720h.
	MaxAge time.Duration
	// UndeliveredAfter is when a message no device acked is reported on
	// NATS, 0 for never; default 30s.
	UndeliveredAfter time.Duration
	// ShardLease is how long a shard stays owned by an instance that
	// stopped renewing; default 5s.
	ShardLease time.Duration
	// ExpireEvery is how often an owned shard's timers run; default 1s.
	ExpireEvery time.Duration
	// Instance names this process among the delivery instances; default
	// the host name and a random suffix.
	Instance string
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
	s.Int(&c.Shards, "shards", "BACHATA_DELIVERY_SHARDS", 32, "shards devices are hashed to (same on every instance)")
	s.Duration(&c.Visibility, "visibility", "BACHATA_DELIVERY_VISIBILITY", 30*time.Second, "unacked time before an entry is pushed again (doubles per attempt, up to 64x)")
	s.Int(&c.MaxAttempts, "max-attempts", "BACHATA_DELIVERY_MAX_ATTEMPTS", 10, "pushes before an entry goes to the dead-letter list")
	s.Int(&c.MaxQueueLength, "max-queue-length", "BACHATA_DELIVERY_MAX_QUEUE_LENGTH", 10000, "entries per device queue, 0 for no bound")
	s.Duration(&c.MaxAge, "max-age", "BACHATA_DELIVERY_MAX_AGE", 720*time.Hour, "how long an entry waits for its ack, 0 for no bound")
	s.Duration(&c.UndeliveredAfter, "undelivered-after", "BACHATA_DELIVERY_UNDELIVERED_AFTER", 30*time.Second, "delay before an unacked message is reported, 0 for never")
	s.Duration(&c.ShardLease, "shard-lease", "BACHATA_DELIVERY_SHARD_LEASE", 5*time.Second, "how long a shard stays with an instance that stopped renewing")
	s.Duration(&c.ExpireEvery, "expire-every", "BACHATA_DELIVERY_EXPIRE_EVERY", time.Second, "how often an owned shard's timers run")
	s.String(&c.Instance, "instance", "BACHATA_INSTANCE", defaultInstance(), "name of this instance among the delivery instances")
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
	p.Addf(c.Shards < 1 || c.Shards > 16384, "shards %d: want 1..16384", c.Shards)
	p.Addf(c.Visibility < 100*time.Millisecond, "visibility %s: want at least 100ms", c.Visibility)
	p.Addf(c.MaxAttempts < 1, "max-attempts %d: want at least 1", c.MaxAttempts)
	p.Addf(c.MaxQueueLength < 0, "max-queue-length %d: want 0 (no bound) or more", c.MaxQueueLength)
	p.Addf(c.MaxAge < 0, "max-age %s: want 0 (no bound) or more", c.MaxAge)
	p.Addf(c.UndeliveredAfter < 0, "undelivered-after %s: want 0 (never) or more", c.UndeliveredAfter)
	p.Addf(c.ShardLease < 300*time.Millisecond, "shard-lease %s: want at least 300ms", c.ShardLease)
	p.Addf(c.ExpireEvery < 10*time.Millisecond, "expire-every %s: want at least 10ms", c.ExpireEvery)
	p.Addf(c.Instance == "", "instance: want a name")
	p.Addf(c.ShutdownTimeout <= 0, "shutdown-timeout %s: want > 0", c.ShutdownTimeout)
	return p.Err()
}

// defaultInstance is the host name with a random suffix, so restarts and
// several processes on one host never share a name.
func defaultInstance() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "delivery"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}
