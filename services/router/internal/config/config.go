// Package config loads the router's settings from flags and BACHATA_*
// environment variables (a flag wins over its variable, which wins over the
// default) and validates all of them, so a misconfigured router reports every
// problem at once.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	libconfig "github.com/bachata-chat/bachata/libs/config"
	"github.com/bachata-chat/bachata/libs/entity"
	"github.com/bachata-chat/bachata/libs/grpcx"
	"github.com/bachata-chat/bachata/services/router/chain"
)

// Config is the router's settings. Every field documents its default; Load
// fills the defaults in, so a zero Config is not valid on its own.
type Config struct {
	// GRPCAddr serves RouterService and gRPC health; default ":9081".
	GRPCAddr string
	// HTTPAddr serves /healthz, /readyz and /metrics; default ":8181".
	HTTPAddr string
	// DeliveryAddr is the DeliveryService target, "host:port" or
	// "dns:///name:port" to balance over every address of a name; default
	// "127.0.0.1:9082".
	DeliveryAddr string
	// ServerName is the server part of this suite's entity IDs; a direct
	// message to a user on another server is refused. Default "localhost".
	ServerName string
	// RequireSign refuses data messages from devices that carry no "sign";
	// default false (a "sign" that is present is always verified).
	RequireSign bool
	// EnqueueTimeout bounds one DeliveryService.Enqueue call, retries
	// included; default 5s. It stays well under a gateway's Route deadline
	// so the router answers Unavailable before the gateway gives up.
	EnqueueTimeout time.Duration
	// ShutdownTimeout bounds the graceful stop of each listener; default 10s.
	ShutdownTimeout time.Duration
	// NATSURL carries requests to application backends, used when the
	// chain has an "app" route; default "nats://127.0.0.1:4222".
	NATSURL string
	// NATSPrefix starts every subject; default "bachata".
	NATSPrefix string
	// RoutesFile names a JSON routes file that assembles the chain (flag
	// -routes-file, BACHATA_ROUTES_FILE); empty uses chain.DefaultSpecs.
	RoutesFile string
	// Routes is the chain read from RoutesFile, or the default one.
	Routes []chain.Spec
	// LogLevel is debug, info, warn or error; default "info".
	LogLevel string
	// LogFormat is json or text; default "json".
	LogFormat string
}

// Load reads the settings from args (without the program name) and getenv,
// then validates them. The Set is returned so that, on libconfig.ErrHelp, the
// caller can print the usage.
func Load(args []string, getenv func(string) string) (Config, *libconfig.Set, error) {
	var c Config
	s := libconfig.New("router", getenv)
	s.String(&c.GRPCAddr, "grpc-addr", "BACHATA_GRPC_ADDR", ":9081", "gRPC listen address")
	s.String(&c.HTTPAddr, "http-addr", "BACHATA_HTTP_ADDR", ":8181", "health and metrics listen address")
	s.String(&c.DeliveryAddr, "delivery-addr", "BACHATA_DELIVERY_ADDR", "127.0.0.1:9082", "delivery service gRPC target (host:port, host:port,host:port or dns:///name:port)")
	s.String(&c.ServerName, "server-name", "BACHATA_SERVER_NAME", "localhost", "server part of entity IDs")
	s.Bool(&c.RequireSign, "require-sign", "BACHATA_REQUIRE_SIGN", false, "refuse data messages without a valid sign")
	s.Duration(&c.EnqueueTimeout, "enqueue-timeout", "BACHATA_ENQUEUE_TIMEOUT", 5*time.Second, "bound on one delivery Enqueue call")
	s.Duration(&c.ShutdownTimeout, "shutdown-timeout", "BACHATA_SHUTDOWN_TIMEOUT", 10*time.Second, "bound on graceful shutdown")
	s.String(&c.NATSURL, "nats-url", "NATS_URL", "nats://127.0.0.1:4222", "NATS URL (used by the app route)")
	s.String(&c.NATSPrefix, "nats-prefix", "BACHATA_NATS_PREFIX", "bachata", "prefix of every NATS subject")
	s.String(&c.RoutesFile, "routes-file", "BACHATA_ROUTES_FILE", "", "JSON file listing the route chain in order (default: handshake, ephemeral, direct)")
	s.String(&c.LogLevel, "log-level", "BACHATA_LOG_LEVEL", "info", "debug, info, warn or error")
	s.String(&c.LogFormat, "log-format", "BACHATA_LOG_FORMAT", "json", "json or text")
	if err := s.Parse(args); errors.Is(err, libconfig.ErrHelp) {
		return c, s, err
	} else if err != nil {
		// Validate too: a value that did not parse kept its default, so
		// this adds only the other problems, and all are reported at once.
		return c, s, errors.Join(err, c.Validate())
	}
	routesErr := c.loadRoutes()
	return c, s, errors.Join(c.Validate(), routesErr)
}

// loadRoutes reads the routes file, or takes the default chain.
func (c *Config) loadRoutes() error {
	if c.RoutesFile == "" {
		c.Routes = chain.DefaultSpecs()
		return nil
	}
	data, err := os.ReadFile(c.RoutesFile)
	if err != nil {
		return fmt.Errorf("routes-file: %w", err)
	}
	f, err := chain.ParseFile(data)
	if err != nil {
		return fmt.Errorf("routes-file %s: %w", c.RoutesFile, err)
	}
	c.Routes = f.Routes
	return nil
}

// Validate reports every invalid setting, joined.
func (c Config) Validate() error {
	var p libconfig.Problems
	checkListen(&p, "grpc-addr", c.GRPCAddr)
	checkListen(&p, "http-addr", c.HTTPAddr)
	p.Addf(!validTarget(c.DeliveryAddr), "delivery-addr %q: want host:port, a comma-separated list of them, or dns:///host:port", c.DeliveryAddr)
	if _, err := entity.ParseServer(c.ServerName); err != nil {
		p.Addf(true, "server-name %q: want a lowercase host name, IPv4 or [IPv6] address, optionally with :port: %w", c.ServerName, err)
	}
	p.Addf(!strings.HasPrefix(c.NATSURL, "nats://") && !strings.HasPrefix(c.NATSURL, "tls://"), "nats-url %q: want nats:// or tls://", c.NATSURL)
	p.Addf(c.NATSPrefix == "" || strings.ContainsAny(c.NATSPrefix, " *>."), "nats-prefix %q: want one subject token", c.NATSPrefix)
	p.Addf(c.EnqueueTimeout <= 0, "enqueue-timeout %s: want > 0", c.EnqueueTimeout)
	p.Addf(c.ShutdownTimeout <= 0, "shutdown-timeout %s: want > 0", c.ShutdownTimeout)
	p.Addf(!slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel), "log-level %q: want debug, info, warn or error", c.LogLevel)
	p.Addf(!slices.Contains([]string{"json", "text"}, c.LogFormat), "log-format %q: want json or text", c.LogFormat)
	return p.Err()
}

// checkListen accepts "host:port" and ":port"; an empty host listens on
// every interface.
func checkListen(p *libconfig.Problems, name, addr string) {
	_, _, err := net.SplitHostPort(addr)
	p.Addf(err != nil, "%s %q: want host:port", name, addr)
}

// validTarget accepts the two gRPC target forms the suite deploys with. A
// host is required: an empty one would resolve differently per resolver.
func validTarget(target string) bool { return grpcx.ValidTarget(target) }
