// Package config loads the presence service's settings from flags and
// environment variables. A flag wins over its variable, which wins over the
// default; every problem is reported at once.
package config

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	libconfig "github.com/bachata-chat/bachata/libs/config"
	"github.com/bachata-chat/bachata/services/presence/internal/lease"
)

// ErrHelp is returned by Load when -h or -help was given; the caller prints
// Usage and exits successfully.
var ErrHelp = libconfig.ErrHelp

// Config is the presence service's settings. Every field documents its
// flag, variable and default.
type Config struct {
	// GRPCAddr serves PresenceService: -grpc-addr, BACHATA_GRPC_ADDR, ":9083".
	GRPCAddr string
	// HTTPAddr serves /healthz, /readyz and /metrics: -http-addr,
	// BACHATA_HTTP_ADDR, ":8183".
	HTTPAddr string
	// RedisURL holds leases and devices: -redis-url, REDIS_URL,
	// "redis://127.0.0.1:6379/0".
	RedisURL string
	// NATSURL carries presence events: -nats-url, NATS_URL,
	// "nats://127.0.0.1:4222".
	NATSURL string
	// NATSPrefix starts every subject: -nats-prefix, BACHATA_NATS_PREFIX,
	// "bachata".
	NATSPrefix string
	// RedisPrefix starts every key: -redis-prefix, BACHATA_REDIS_PREFIX,
	// "bachata".
	RedisPrefix string
	// Lease is the lease granted to a heartbeat that asks for none: -lease,
	// BACHATA_PRESENCE_LEASE, 9s. A crashed gateway's devices go offline
	// within its lease plus SweepInterval.
	Lease time.Duration
	// SweepInterval is how often each instance looks for expired leases:
	// -sweep-interval, BACHATA_PRESENCE_SWEEP, 1s.
	SweepInterval time.Duration
	// SessionTTL is how long a device's session key can be resumed, on any
	// gateway, after it was issued or its last connection closed:
	// -session-ttl, BACHATA_SESSION_TTL, 24h.
	SessionTTL time.Duration
	// ShutdownTimeout bounds the graceful stop of each server:
	// -shutdown-timeout, BACHATA_SHUTDOWN_TIMEOUT, 10s.
	ShutdownTimeout time.Duration
	// LogLevel is debug, info, warn or error: -log-level, BACHATA_LOG_LEVEL,
	// "info".
	LogLevel string
	// LogFormat is json or text: -log-format, BACHATA_LOG_FORMAT, "json".
	LogFormat string
}

// bind declares every setting on a new flag set.
func bind(c *Config, getenv func(string) string) *libconfig.Set {
	s := libconfig.New("presence", getenv)
	s.String(&c.GRPCAddr, "grpc-addr", "BACHATA_GRPC_ADDR", ":9083", "gRPC listen address (host:port)")
	s.String(&c.HTTPAddr, "http-addr", "BACHATA_HTTP_ADDR", ":8183", "/healthz, /readyz and /metrics listen address (host:port)")
	s.String(&c.RedisURL, "redis-url", "REDIS_URL", "redis://127.0.0.1:6379/0", "Redis URL (redis://, rediss://, unix:// or redis+cluster://host:port,…)")
	s.String(&c.NATSURL, "nats-url", "NATS_URL", "nats://127.0.0.1:4222", "NATS URL, or several separated by commas")
	s.String(&c.NATSPrefix, "nats-prefix", "BACHATA_NATS_PREFIX", "bachata", "prefix of every NATS subject")
	s.String(&c.RedisPrefix, "redis-prefix", "BACHATA_REDIS_PREFIX", "bachata", "prefix of every Redis key")
	s.Duration(&c.Lease, "lease", "BACHATA_PRESENCE_LEASE", 9*time.Second, "gateway lease when a heartbeat asks for none")
	s.Duration(&c.SweepInterval, "sweep-interval", "BACHATA_PRESENCE_SWEEP", time.Second, "how often expired leases are swept")
	s.Duration(&c.SessionTTL, "session-ttl", "BACHATA_SESSION_TTL", 24*time.Hour, "how long a session key can be resumed after its last connection")
	s.Duration(&c.ShutdownTimeout, "shutdown-timeout", "BACHATA_SHUTDOWN_TIMEOUT", 10*time.Second, "bound on graceful shutdown")
	s.String(&c.LogLevel, "log-level", "BACHATA_LOG_LEVEL", "info", "debug, info, warn or error")
	s.String(&c.LogFormat, "log-format", "BACHATA_LOG_FORMAT", "json", "json or text")
	return s
}

// Load reads the settings from args (without the program name) and getenv
// and validates them. It reports every problem, from the environment, the
// flags and validation, in one error; or ErrHelp for -h.
func Load(args []string, getenv func(string) string) (Config, error) {
	var c Config
	parseErr := bind(&c, getenv).Parse(args)
	if errors.Is(parseErr, ErrHelp) {
		return c, ErrHelp
	}
	if err := errors.Join(parseErr, c.Validate()); err != nil {
		return c, &InvalidError{err: err}
	}
	return c, nil
}

// InvalidError is Load's error for a bad configuration: every problem, one
// per line, so an operator fixes them all in one go.
type InvalidError struct{ err error }

func (e *InvalidError) Error() string {
	return "invalid configuration:\n  " + strings.ReplaceAll(e.err.Error(), "\n", "\n  ")
}

// Unwrap returns the joined problems.
func (e *InvalidError) Unwrap() error { return e.err }

// Usage writes every flag with its variable and default to w.
func Usage(w io.Writer, getenv func(string) string) {
	fmt.Fprintln(w, "Usage: presence [flags]\n\nEvery flag can also be set by the environment variable named with it.")
	var c Config
	bind(&c, getenv).Usage(w)
}

// Validate reports every invalid setting.
func (c Config) Validate() error {
	var p libconfig.Problems
	for _, a := range []struct{ name, addr string }{{"grpc-addr", c.GRPCAddr}, {"http-addr", c.HTTPAddr}} {
		p.Addf(!validListenAddr(a.addr), "%s %q: want host:port with a port 0-65535", a.name, a.addr)
	}
	p.Addf(!hasScheme(c.RedisURL, "redis://", "rediss://", "unix://", "redis+cluster://"),
		"redis-url %q: want redis://, rediss://, unix:// or redis+cluster://", c.RedisURL)
	for u := range strings.SplitSeq(c.NATSURL, ",") {
		p.Addf(!hasScheme(strings.TrimSpace(u), "nats://", "tls://", "ws://", "wss://"),
			"nats-url %q: want nats://, tls://, ws:// or wss://", u)
	}
	p.Addf(!validSubjectPrefix(c.NATSPrefix), "nats-prefix %q: want dot-separated tokens without spaces, '*' or '>'", c.NATSPrefix)
	p.Addf(c.RedisPrefix == "" || strings.ContainsAny(c.RedisPrefix, "{}"),
		"redis-prefix %q: want non-empty, without braces (they would break the hash tags)", c.RedisPrefix)
	p.Addf(c.Lease <= 0 || c.Lease > lease.MaxLease, "lease %s: want > 0 and at most %s", c.Lease, lease.MaxLease)
	p.Addf(c.SweepInterval <= 0, "sweep-interval %s: want > 0", c.SweepInterval)
	p.Addf(c.SweepInterval > 0 && c.Lease > 0 && c.SweepInterval >= c.Lease,
		"sweep-interval %s: want shorter than lease %s", c.SweepInterval, c.Lease)
	p.Addf(c.SessionTTL < time.Second, "session-ttl %s: want at least 1s", c.SessionTTL)
	p.Addf(c.ShutdownTimeout <= 0, "shutdown-timeout %s: want > 0", c.ShutdownTimeout)
	p.Addf(!oneOf(c.LogLevel, "debug", "info", "warn", "error"), "log-level %q: want debug, info, warn or error", c.LogLevel)
	p.Addf(!oneOf(c.LogFormat, "json", "text"), "log-format %q: want json or text", c.LogFormat)
	return p.Err()
}

func validListenAddr(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	n, err := strconv.ParseUint(port, 10, 16)
	return err == nil && n <= 65535
}

func hasScheme(u string, schemes ...string) bool {
	for _, s := range schemes {
		if strings.HasPrefix(u, s) && len(u) > len(s) {
			return true
		}
	}
	return false
}

func validSubjectPrefix(p string) bool {
	if p == "" || strings.ContainsAny(p, " \t\r\n*>") {
		return false
	}
	for tok := range strings.SplitSeq(p, ".") {
		if tok == "" {
			return false
		}
	}
	return true
}

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return true
		}
	}
	return false
}
