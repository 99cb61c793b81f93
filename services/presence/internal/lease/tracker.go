package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/bachata-chat/bachata/libs/natsx"
)

// Limits on requests, so one caller cannot make keys or replies unbounded.
const (
	// MaxIDLen is the longest user, device, gateway or connection ID, in bytes.
	MaxIDLen = 1024
	// MaxQueryUsers is the most users one Query may name.
	MaxQueryUsers = 1000
	// MaxLease is the longest lease a Heartbeat may ask for.
	MaxLease = 5 * time.Minute
)

// Options configures a Tracker. Zero values mean the documented defaults.
type Options struct {
	// Prefix starts every Redis key; default "bachata".
	Prefix string
	// Subjects names the NATS subjects events go to; default prefix "bachata".
	Subjects natsx.Subjects
	// DefaultLease is the lease granted to a Heartbeat that asks for none
	// (lease_ms 0); default 9s.
	DefaultLease time.Duration
	// ClaimTimeout is how long a sweeper may hold an expired gateway before
	// another instance sweeps it again; default 30s. It bounds how late a
	// gateway's devices go offline when the instance sweeping it dies.
	ClaimTimeout time.Duration
	// SessionTTL is how long a device's session key can be resumed after
	// it was issued, resumed or its connection closed; default 24h.
	SessionTTL time.Duration
	// Logger receives the tracker's logs; required.
	Logger *slog.Logger
	// Registerer receives the tracker's metrics; required.
	Registerer prometheus.Registerer
}

// Tracker records connections and leases in Redis and publishes presence
// events on NATS. It is safe for concurrent use, and any number of Trackers
// in any number of processes may share one Redis.
type Tracker struct {
	rdb      redis.UniversalClient
	nc       *nats.Conn
	keys     keys
	subjects natsx.Subjects
	lease    time.Duration
	claimFor time.Duration
	// sessionTTL is Options.SessionTTL.
	sessionTTL time.Duration
	logger     *slog.Logger
	metrics    *metrics
	now        func() time.Time

	// testHookRecorded, when set by a test, runs in Connect between writing
	// the connection and checking the lease again, where a sweep may strike.
	testHookRecorded func()
}

// New returns a Tracker over rdb that publishes on nc.
func New(rdb redis.UniversalClient, nc *nats.Conn, opts Options) (*Tracker, error) {
	switch {
	case rdb == nil:
		return nil, errors.New("new tracker: no redis client")
	case nc == nil:
		return nil, errors.New("new tracker: no nats connection")
	case opts.Logger == nil:
		return nil, errors.New("new tracker: no logger")
	case opts.Registerer == nil:
		return nil, errors.New("new tracker: no metrics registerer")
	case strings.ContainsAny(opts.Prefix, "{}"):
		return nil, fmt.Errorf("new tracker: prefix %q: braces would break the hash tags", opts.Prefix)
	}
	if opts.Prefix == "" {
		opts.Prefix = "bachata"
	}
	if opts.DefaultLease <= 0 {
		opts.DefaultLease = 9 * time.Second
	}
	if opts.ClaimTimeout <= 0 {
		opts.ClaimTimeout = 30 * time.Second
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 24 * time.Hour
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("new tracker: %w", err)
	}
	return &Tracker{
		rdb:        rdb,
		nc:         nc,
		keys:       newKeys(opts.Prefix),
		subjects:   opts.Subjects,
		lease:      opts.DefaultLease,
		claimFor:   opts.ClaimTimeout,
		sessionTTL: opts.SessionTTL,
		logger:     opts.Logger,
		metrics:    m,
		now:        time.Now,
	}, nil
}

func (t *Tracker) nowMs() int64 { return t.now().UnixMilli() }

// redisErr counts a failed Redis call of operation op and wraps err with
// the operation and the step that failed. A caller that gave up (context
// ended) is not a Redis failure and is not counted.
func (t *Tracker) redisErr(op, step string, err error) error {
	if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		t.metrics.redisErrors.WithLabelValues(op).Inc()
	}
	return fmt.Errorf("%s: %s: redis: %w", op, step, err)
}

// Connection names one device connection on one gateway.
type Connection struct {
	// User is the user's entity ID, like "@alice@localhost".
	User string
	// Device is the device ID.
	Device string
	// Gateway is the ID of the gateway holding the connection.
	Gateway string
	// ID is unique per connection.
	ID string
}

func (c Connection) validate(op string) error {
	for _, f := range []struct{ name, v string }{
		{"user", c.User}, {"device", c.Device}, {"gateway", c.Gateway}, {"connection id", c.ID},
	} {
		if err := validID(f.name, f.v); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	return nil
}

func validID(name, v string) error {
	switch {
	case v == "":
		return fmt.Errorf("%w: %s is empty", ErrInvalid, name)
	case len(v) > MaxIDLen:
		return fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalid, name, MaxIDLen)
	case strings.Contains(v, sep):
		return fmt.Errorf("%w: %s contains the byte 0x1f", ErrInvalid, name)
	}
	return nil
}
