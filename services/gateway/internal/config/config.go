// Package config loads the gateway's settings from flags and BACHATA_*
// environment variables (a flag wins over its variable, which wins over the
// default) and validates them, reporting every problem at once.
package config

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	libconfig "github.com/bachata-chat/bachata/libs/config"
	"github.com/bachata-chat/bachata/libs/grpcx"
	"github.com/bachata-chat/bachata/services/gateway/internal/origin"
)

// MinJWKSRefresh is the shortest JWKS refresh interval accepted: an
// identity provider's keys change over days, and many gateways polling
// more often only load it.
const MinJWKSRefresh = 30 * time.Second

// MinJWTSecret is the shortest HS256 secret accepted, in bytes: a shorter
// one is guessable offline from any token a client holds.
const MinJWTSecret = 16

// The values of Config.WSReader.
const (
	// ReaderEpoll reads connections with one epoll set (wsio.Poller).
	ReaderEpoll = "epoll"
	// ReaderGoroutine reads each connection with a goroutine of its own.
	ReaderGoroutine = "goroutine"
)

// MaxGatewayID bounds the gateway ID, which becomes a NATS subject token and
// appears in every presence and delivery record.
const MaxGatewayID = 64

// Config is the gateway's settings. Every field documents its flag,
// variable and default; Load fills the defaults.
type Config struct {
	// WSAddr serves GET /ws (flag -ws-addr, BACHATA_WS_ADDR, default ":8080").
	WSAddr string
	// AdminAddr serves /healthz, /readyz and /metrics (flag -admin-addr,
	// BACHATA_ADMIN_ADDR, default ":8081").
	AdminAddr string
	// GatewayID names this gateway to delivery and presence and in its NATS
	// subject (flag -gateway-id, BACHATA_GATEWAY_ID, default hostname + "-"
	// + 6 random hex digits, lowercased). Characters a-z 0-9 - _ only.
	GatewayID string
	// ServerName is the server part of user entity IDs (flag -server-name,
	// BACHATA_SERVER_NAME, default "localhost").
	ServerName string
	// JWTSecret verifies HS256 client tokens (flag -jwt-secret,
	// BACHATA_JWT_SECRET, default empty: no HS256; at least MinJWTSecret
	// bytes). Prefer the variable: flags show in the process list. At least
	// one of JWTSecret, JWKSURL and AuthHookAddr is required.
	JWTSecret string
	// JWKSURL serves the JSON Web Key Set whose RSA and EC P-256 keys
	// verify RS256 and ES256 client tokens (flag -jwks-url,
	// BACHATA_JWKS_URL, default empty: no JWKS; https:// or http://).
	JWKSURL string
	// JWKSRefresh is how often the key set is fetched again; a token naming
	// an unknown kid also fetches it, at most once per
	// auth.DefaultJWKSMinRefetch (flag -jwks-refresh, BACHATA_JWKS_REFRESH,
	// default 10m, at least MinJWKSRefresh).
	JWKSRefresh time.Duration
	// AuthHookAddr is the gRPC target of an AuthHookService
	// (bachata.auth.v1) that is offered every token not verified locally
	// (flag -auth-hook-addr, BACHATA_AUTH_HOOK_ADDR, default empty: no
	// hook).
	AuthHookAddr string
	// AuthHookTimeout bounds one call to the auth hook; a hook that does
	// not answer in time gets the client a 503 (flag -auth-hook-timeout,
	// BACHATA_AUTH_HOOK_TIMEOUT, default 2s).
	AuthHookTimeout time.Duration
	// RouterAddr, DeliveryAddr and PresenceAddr are the gRPC targets of the
	// peer services (flags -router-addr, -delivery-addr, -presence-addr;
	// BACHATA_ROUTER_ADDR, BACHATA_DELIVERY_ADDR, BACHATA_PRESENCE_ADDR;
	// defaults 127.0.0.1:9081, 127.0.0.1:9082, 127.0.0.1:9083).
	// "dns:///name:port" balances
	// over every address of a name.
	RouterAddr, DeliveryAddr, PresenceAddr string
	// NATSURL is the NATS server (flag -nats-url, NATS_URL, default
	// "nats://127.0.0.1:4222").
	NATSURL string
	// NATSPrefix starts every NATS subject (flag -nats-prefix,
	// BACHATA_NATS_PREFIX, default "bachata").
	NATSPrefix string
	// PingInterval is how long a connection may stay silent before the
	// server sends {"type":1001} (flag -ping-interval, BACHATA_PING_INTERVAL,
	// default 25s).
	PingInterval time.Duration
	// IdleTimeout closes a connection that sent nothing for this long (flag
	// -idle-timeout, BACHATA_IDLE_TIMEOUT, default 60s); it must exceed
	// PingInterval so a live client has time to answer the ping.
	IdleTimeout time.Duration
	// MaxFrame is the largest client message in bytes; a bigger one closes
	// the socket with 1009 (flag -max-frame, BACHATA_MAX_FRAME, default
	// 65536).
	MaxFrame int
	// Heartbeat is how often the gateway renews its presence lease; the
	// lease lasts 3×Heartbeat (flag -heartbeat, BACHATA_HEARTBEAT, default
	// 3s).
	Heartbeat time.Duration
	// WriteTimeout bounds one write to a socket; a client that does not
	// read for this long is disconnected (flag -write-timeout,
	// BACHATA_WRITE_TIMEOUT, default 10s).
	WriteTimeout time.Duration
	// RPCTimeout bounds every gRPC call the gateway makes (flag
	// -rpc-timeout, BACHATA_RPC_TIMEOUT, default 10s). A Route that times
	// out is answered with the retryable errCode 5001.
	RPCTimeout time.Duration
	// QueueBytes bounds the frames waiting to be written to one connection;
	// a connection whose queue overflows is closed with 1013 (flag
	// -queue-bytes, BACHATA_QUEUE_BYTES, default 1048576).
	QueueBytes int
	// WSReader is how connections are read (flag -ws-reader,
	// BACHATA_WS_READER, default "epoll"; empty means the default):
	// "epoll" parks idle connections in one epoll set with no goroutine
	// each (Linux; elsewhere it falls back), "goroutine" blocks one
	// goroutine per connection in Read. docs/benchmarks.md has the memory
	// of each.
	WSReader string
	// AdminToken is the bearer token of the admin API on the admin
	// listener; empty disables the API (flag -admin-token,
	// BACHATA_ADMIN_TOKEN, preferred).
	AdminToken string
	// RateLimit is the data messages per second each user may send through
	// this gateway, all their connections here together; 0 turns limiting
	// off (flag -rate-limit, BACHATA_RATE_LIMIT, default 20).
	RateLimit int
	// RateBurst is how many messages a user may send at once after a quiet
	// spell (flag -rate-burst, BACHATA_RATE_BURST, default 40).
	RateBurst int
	// RateStrikes is how many messages over the limit within 10 seconds get
	// a connection closed with 1008; 0 never closes (flag -rate-strikes,
	// BACHATA_RATE_STRIKES, default 20).
	RateStrikes int
	// MaxUserConns bounds the devices one user may have connected to this
	// gateway at once; a further device is refused with HTTP 429, while a
	// device already connected may always reconnect (flag -max-user-conns,
	// BACHATA_MAX_USER_CONNECTIONS, default 16; 0 for no limit).
	MaxUserConns int
	// AllowedOrigins lists the browser origins that may connect,
	// comma-separated: "https://chat.example.com", "https://*.example.com";
	// empty or "*" allows any. A handshake from another origin gets HTTP
	// 403; clients that send no Origin (not browsers) are not affected
	// (flag -allowed-origins, BACHATA_ALLOWED_ORIGINS, default empty).
	AllowedOrigins string
	// DevTokens mounts POST /dev/token on the WebSocket listener: it mints
	// a short-lived HS256 token for ANY username asked for, and adds that
	// user to the demo room !lobby@<server name>, so the chat page at / can
	// sign in with a name. FOR DEVELOPMENT ONLY: anyone who reaches the
	// gateway can then sign in as anyone. Only accepted together with
	// JWTSecret (flag -dev-tokens, BACHATA_DEV_TOKENS, default false;
	// `make run` turns it on).
	DevTokens bool
	// PresenceCoalesce is the shortest time between two presence events of
	// one user to a subscriber; changes within it are merged, and a status
	// that changes and changes back is not sent (flag -presence-coalesce,
	// BACHATA_PRESENCE_COALESCE, default 1s).
	PresenceCoalesce time.Duration
	// PresenceMaxWatch bounds the users one connection may watch with
	// presence.subscribe (flag -presence-max-watch,
	// BACHATA_PRESENCE_MAX_WATCH, default 1000).
	PresenceMaxWatch int
	// DrainDelay is how long the gateway reports not ready before it
	// starts closing connections on SIGTERM, so a load balancer that
	// watches /readyz sends new clients elsewhere first (flag
	// -drain-delay, BACHATA_DRAIN_DELAY, default 0; a few seconds behind a
	// Kubernetes Service). It comes before ShutdownTimeout.
	DrainDelay time.Duration
	// ShutdownTimeout bounds the graceful stop (flag -shutdown-timeout,
	// BACHATA_SHUTDOWN_TIMEOUT, default 15s).
	ShutdownTimeout time.Duration
	// LogLevel and LogFormat configure the logger (flags -log-level,
	// -log-format; BACHATA_LOG_LEVEL, BACHATA_LOG_FORMAT; defaults "info",
	// "json").
	LogLevel, LogFormat string
}

// Lease is how long presence keeps this gateway's devices online without a
// heartbeat: three heartbeats, so one lost heartbeat never drops them.
func (c Config) Lease() time.Duration { return 3 * c.Heartbeat }

// Load reads the settings from args (without the program name) and getenv
// and validates them. It returns the flag set too, so the caller can print
// usage when the error is libconfig.ErrHelp.
func Load(args []string, getenv func(string) string) (Config, *libconfig.Set, error) {
	var c Config
	s := libconfig.New("gateway", getenv)
	s.String(&c.WSAddr, "ws-addr", "BACHATA_WS_ADDR", ":8080", "WebSocket listen address (GET /ws)")
	s.String(&c.AdminAddr, "admin-addr", "BACHATA_ADMIN_ADDR", ":8081", "admin listen address (/healthz, /readyz, /metrics)")
	s.String(&c.GatewayID, "gateway-id", "BACHATA_GATEWAY_ID", "", "gateway ID, a-z 0-9 - _ (default hostname-<6 random hex>)")
	s.String(&c.ServerName, "server-name", "BACHATA_SERVER_NAME", "localhost", "server part of user entity IDs")
	// The secret is read from the environment by hand: a Set shows an
	// environment value as the flag's default in -h output, which would
	// print the secret.
	s.String(&c.JWTSecret, "jwt-secret", "", "", "HS256 secret for client tokens, at least 16 bytes (env BACHATA_JWT_SECRET, preferred); this, jwks-url or auth-hook-addr is required")
	s.String(&c.JWKSURL, "jwks-url", "BACHATA_JWKS_URL", "", "JSON Web Key Set URL verifying RS256/ES256 client tokens; empty for none")
	s.Duration(&c.JWKSRefresh, "jwks-refresh", "BACHATA_JWKS_REFRESH", 10*time.Minute, "how often the JWKS is fetched again")
	s.String(&c.AuthHookAddr, "auth-hook-addr", "BACHATA_AUTH_HOOK_ADDR", "", "gRPC target of an AuthHookService for tokens not verified locally; empty for none")
	s.Duration(&c.AuthHookTimeout, "auth-hook-timeout", "BACHATA_AUTH_HOOK_TIMEOUT", 2*time.Second, "bound on one auth hook call")
	s.String(&c.AdminToken, "admin-token", "", "", "bearer token of the admin API (/v1/…) on the admin listener; empty disables it (env BACHATA_ADMIN_TOKEN, preferred)")
	s.String(&c.RouterAddr, "router-addr", "BACHATA_ROUTER_ADDR", "127.0.0.1:9081", "router gRPC target")
	s.String(&c.DeliveryAddr, "delivery-addr", "BACHATA_DELIVERY_ADDR", "127.0.0.1:9082", "delivery gRPC target")
	s.String(&c.PresenceAddr, "presence-addr", "BACHATA_PRESENCE_ADDR", "127.0.0.1:9083", "presence gRPC target")
	s.String(&c.NATSURL, "nats-url", "NATS_URL", "nats://127.0.0.1:4222", "NATS URL")
	s.String(&c.NATSPrefix, "nats-prefix", "BACHATA_NATS_PREFIX", "bachata", "prefix of every NATS subject")
	s.Duration(&c.PingInterval, "ping-interval", "BACHATA_PING_INTERVAL", 25*time.Second, "ping a connection silent this long")
	s.Duration(&c.IdleTimeout, "idle-timeout", "BACHATA_IDLE_TIMEOUT", 60*time.Second, "close a connection silent this long (> ping-interval)")
	s.Int(&c.MaxFrame, "max-frame", "BACHATA_MAX_FRAME", 64<<10, "largest client message in bytes (bigger closes with 1009)")
	s.Duration(&c.Heartbeat, "heartbeat", "BACHATA_HEARTBEAT", 3*time.Second, "presence lease renewal interval (lease = 3x)")
	s.Duration(&c.WriteTimeout, "write-timeout", "BACHATA_WRITE_TIMEOUT", 10*time.Second, "bound on one socket write")
	s.Duration(&c.RPCTimeout, "rpc-timeout", "BACHATA_RPC_TIMEOUT", 10*time.Second, "bound on every gRPC call")
	s.Int(&c.QueueBytes, "queue-bytes", "BACHATA_QUEUE_BYTES", 1<<20, "bytes waiting per connection before it is closed with 1013")
	s.String(&c.WSReader, "ws-reader", "BACHATA_WS_READER", ReaderEpoll, "how connections are read: epoll (no goroutine per idle connection) or goroutine")
	s.Int(&c.RateLimit, "rate-limit", "BACHATA_RATE_LIMIT", 20, "data messages per second per user, 0 for no limit")
	s.Int(&c.RateBurst, "rate-burst", "BACHATA_RATE_BURST", 40, "data messages a user may send at once")
	s.Int(&c.RateStrikes, "rate-strikes", "BACHATA_RATE_STRIKES", 20, "messages over the limit within 10s before closing with 1008, 0 never")
	s.Int(&c.MaxUserConns, "max-user-conns", "BACHATA_MAX_USER_CONNECTIONS", 16, "devices one user may have connected here at once, 0 for no limit")
	s.String(&c.AllowedOrigins, "allowed-origins", "BACHATA_ALLOWED_ORIGINS", "", "browser origins allowed to connect, comma-separated (https://app.example.com, https://*.example.com); empty allows any")
	s.Bool(&c.DevTokens, "dev-tokens", "BACHATA_DEV_TOKENS", false, "DEVELOPMENT ONLY: POST /dev/token mints a token for any username (needs the HS256 secret)")
	s.Duration(&c.PresenceCoalesce, "presence-coalesce", "BACHATA_PRESENCE_COALESCE", time.Second, "shortest time between two presence events of one user")
	s.Int(&c.PresenceMaxWatch, "presence-max-watch", "BACHATA_PRESENCE_MAX_WATCH", 1000, "users one connection may watch with presence.subscribe")
	s.Duration(&c.DrainDelay, "drain-delay", "BACHATA_DRAIN_DELAY", 0, "time reported not ready before connections are closed on shutdown")
	s.Duration(&c.ShutdownTimeout, "shutdown-timeout", "BACHATA_SHUTDOWN_TIMEOUT", 15*time.Second, "bound on graceful shutdown")
	s.String(&c.LogLevel, "log-level", "BACHATA_LOG_LEVEL", "info", "debug, info, warn or error")
	s.String(&c.LogFormat, "log-format", "BACHATA_LOG_FORMAT", "json", "json or text")
	if err := s.Parse(args); err != nil {
		return c, s, err
	}
	if c.AdminToken == "" {
		c.AdminToken = getenv("BACHATA_ADMIN_TOKEN")
	}
	if c.JWTSecret == "" {
		c.JWTSecret = getenv("BACHATA_JWT_SECRET")
	}
	if c.GatewayID == "" {
		id, err := defaultGatewayID()
		if err != nil {
			return c, s, err
		}
		c.GatewayID = id
	}
	return c, s, c.Validate()
}

// Validate reports every invalid setting at once.
func (c Config) Validate() error {
	var p libconfig.Problems
	for _, a := range []struct{ name, addr string }{
		{"ws-addr", c.WSAddr}, {"admin-addr", c.AdminAddr},
	} {
		_, _, err := net.SplitHostPort(a.addr)
		p.Addf(err != nil, "%s %q: want host:port", a.name, a.addr)
	}
	for _, a := range []struct{ name, addr string }{
		{"router-addr", c.RouterAddr}, {"delivery-addr", c.DeliveryAddr}, {"presence-addr", c.PresenceAddr},
	} {
		p.Addf(strings.TrimSpace(a.addr) == "", "%s: want a gRPC target like host:port", a.name)
	}
	p.Addf(!validGatewayID(c.GatewayID), "gateway-id %q: want 1..%d characters of a-z 0-9 - _", c.GatewayID, MaxGatewayID)
	p.Addf(c.ServerName == "" || strings.ContainsAny(c.ServerName, "@!#&%^:/ "), "server-name %q: want a host name", c.ServerName)
	p.Addf(c.JWTSecret == "" && c.JWKSURL == "" && c.AuthHookAddr == "",
		"no client authentication: set BACHATA_JWT_SECRET (at least %d bytes), BACHATA_JWKS_URL or BACHATA_AUTH_HOOK_ADDR", MinJWTSecret)
	p.Addf(c.JWTSecret != "" && len(c.JWTSecret) < MinJWTSecret, "jwt-secret is %d bytes: want at least %d", len(c.JWTSecret), MinJWTSecret)
	p.Addf(c.JWKSURL != "" && !validJWKSURL(c.JWKSURL), "jwks-url %q: want an https:// or http:// URL with a host", c.JWKSURL)
	p.Addf(c.JWKSURL != "" && c.JWKSRefresh < MinJWKSRefresh, "jwks-refresh %s: want at least %s", c.JWKSRefresh, MinJWKSRefresh)
	p.Addf(c.AuthHookAddr != "" && !grpcx.ValidTarget(c.AuthHookAddr), "auth-hook-addr %q: want host:port, dns:///host:port or host:port,host:port", c.AuthHookAddr)
	p.Addf(c.AuthHookAddr != "" && c.AuthHookTimeout <= 0, "auth-hook-timeout %s: want > 0", c.AuthHookTimeout)
	p.Addf(!strings.HasPrefix(c.NATSURL, "nats://") && !strings.HasPrefix(c.NATSURL, "tls://"), "nats-url %q: want nats:// or tls://", c.NATSURL)
	p.Addf(c.NATSPrefix == "" || strings.ContainsAny(c.NATSPrefix, " *>"), "nats-prefix %q: want a non-empty subject token", c.NATSPrefix)
	p.Addf(c.PingInterval <= 0, "ping-interval %s: want > 0", c.PingInterval)
	p.Addf(c.IdleTimeout <= c.PingInterval, "idle-timeout %s: want more than ping-interval %s", c.IdleTimeout, c.PingInterval)
	p.Addf(c.MaxFrame < 1024 || c.MaxFrame > 16<<20, "max-frame %d: want 1024..16777216 bytes", c.MaxFrame)
	p.Addf(c.Heartbeat <= 0, "heartbeat %s: want > 0", c.Heartbeat)
	p.Addf(c.WriteTimeout <= 0, "write-timeout %s: want > 0", c.WriteTimeout)
	p.Addf(c.RPCTimeout <= 0, "rpc-timeout %s: want > 0", c.RPCTimeout)
	p.Addf(c.QueueBytes < c.MaxFrame, "queue-bytes %d: want at least max-frame %d", c.QueueBytes, c.MaxFrame)
	p.Addf(!oneOf(c.WSReader, "", ReaderEpoll, ReaderGoroutine), "ws-reader %q: want %s or %s", c.WSReader, ReaderEpoll, ReaderGoroutine)
	p.Addf(c.AdminToken != "" && len(c.AdminToken) < MinJWTSecret, "admin-token is %d bytes: want at least %d", len(c.AdminToken), MinJWTSecret)
	p.Addf(c.RateLimit < 0, "rate-limit %d: want 0 (off) or more", c.RateLimit)
	p.Addf(c.RateLimit > 0 && c.RateBurst < 1, "rate-burst %d: want at least 1", c.RateBurst)
	p.Addf(c.RateStrikes < 0, "rate-strikes %d: want 0 (never close) or more", c.RateStrikes)
	p.Addf(c.MaxUserConns < 0, "max-user-conns %d: want 0 (no limit) or more", c.MaxUserConns)
	_, originsErr := origin.Parse(c.AllowedOrigins)
	p.Addf(originsErr != nil, "allowed-origins: %v", originsErr)
	p.Addf(c.DevTokens && c.JWTSecret == "", "dev-tokens: needs the HS256 secret BACHATA_JWT_SECRET, which signs the tokens it mints")
	p.Addf(c.PresenceCoalesce <= 0, "presence-coalesce %s: want > 0", c.PresenceCoalesce)
	p.Addf(c.PresenceMaxWatch < 1, "presence-max-watch %d: want at least 1", c.PresenceMaxWatch)
	p.Addf(c.DrainDelay < 0 || c.DrainDelay > 5*time.Minute, "drain-delay %s: want 0 to 5m", c.DrainDelay)
	p.Addf(c.ShutdownTimeout <= 0, "shutdown-timeout %s: want > 0", c.ShutdownTimeout)
	p.Addf(!oneOf(strings.ToLower(c.LogLevel), "debug", "info", "warn", "error"), "log-level %q: want debug, info, warn or error", c.LogLevel)
	p.Addf(!oneOf(strings.ToLower(c.LogFormat), "json", "text"), "log-format %q: want json or text", c.LogFormat)
	return p.Err()
}

// validJWKSURL reports whether u is an absolute http(s) URL with a host.
func validJWKSURL(u string) bool {
	parsed, err := url.Parse(u)
	return err == nil && (parsed.Scheme == "https" || parsed.Scheme == "http") && parsed.Host != ""
}

func oneOf(s string, set ...string) bool {
	for _, v := range set {
		if s == v {
			return true
		}
	}
	return false
}

// validGatewayID reports whether id is safe as one NATS subject token and
// as a key part: a-z 0-9 - _ only.
func validGatewayID(id string) bool {
	if id == "" || len(id) > MaxGatewayID {
		return false
	}
	for i := 0; i < len(id); i++ {
		ch := id[i]
		if (ch < 'a' || ch > 'z') && (ch < '0' || ch > '9') && ch != '-' && ch != '_' {
			return false
		}
	}
	return true
}

// defaultGatewayID is the hostname, lowercased with unsafe characters
// replaced by '-', plus 6 random hex digits so two processes on one host
// (or a restarted pod keeping its name) never share an ID: a restarted
// gateway must not inherit the previous one's lease or connections.
func defaultGatewayID() (string, error) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "gateway"
	}
	var b strings.Builder
	for _, r := range strings.ToLower(host) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	name := b.String()
	if len(name) > MaxGatewayID-7 {
		name = name[:MaxGatewayID-7]
	}
	var suffix [3]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return "", fmt.Errorf("gateway id: read random: %w", err)
	}
	return name + "-" + hex.EncodeToString(suffix[:]), nil
}
