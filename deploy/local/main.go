// Command bachata-local runs the whole suite on this machine in the
// foreground (`make run`) and mints development tokens (`token <user>`).
//
// NATS comes from NATS_URL, else an embedded NATS server; Redis from
// REDIS_URL, else the embedded store (package embedredis), durable in
// .cache/run/store so queued messages survive a restart. Nothing but Go is
// needed.
//
// The listeners are the documented defaults (gateway WebSocket :8080, admin
// :8081, …). BACHATA_LOCAL_BASE_PORT moves them all at once, so a second
// suite (the TypeScript SDK's tests, say) runs beside a developer's
// `make run`: it is the gateway's WebSocket port, and every other listener
// keeps its distance from it (admin base+1, router base+1001/base+101,
// delivery base+1002/base+102, presence base+1003/base+103).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/bachata-chat/bachata/libs/localsuite"
)

// devSecret is used when BACHATA_JWT_SECRET is unset. It is printed at start
// and must never be used outside a developer's machine.
const devSecret = "bachata-dev-secret-not-for-production" //nolint:gosec // a published development secret, on purpose

// devAdminToken is the admin API's bearer token when BACHATA_ADMIN_TOKEN is
// unset; printed at start, for a developer's machine only.
const devAdminToken = "bachata-dev-admin-not-for-production" //nolint:gosec // a published development token, on purpose

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bachata-local:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	secret := getenv("BACHATA_JWT_SECRET")
	if secret == "" {
		secret = devSecret
	}
	if len(args) >= 2 && args[1] == "token" {
		if len(args) != 3 {
			return errors.New("usage: bachata-local token <username>")
		}
		tok, err := mintToken(secret, args[2], 24*time.Hour)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(out, tok)
		return err
	}
	if len(args) != 2 {
		return errors.New("usage: bachata-local <bin dir> | bachata-local token <username>")
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return serve(ctx, args[1], secret, getenv, out)
}

func serve(ctx context.Context, binDir, secret string, getenv func(string) string, out io.Writer) error {
	state, err := filepath.Abs(filepath.Join(".cache", "run"))
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	logDir := filepath.Join(state, "logs")
	if err := os.MkdirAll(logDir, 0o750); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	natsURL := getenv("NATS_URL")
	if natsURL == "" {
		ns, err := startNATS(filepath.Join(state, "nats"))
		if err != nil {
			return err
		}
		defer ns.Shutdown()
		natsURL = ns.ClientURL()
		fmt.Fprintln(out, "embedded NATS at", natsURL)
	}
	redisURL := getenv("REDIS_URL")
	if redisURL == "" {
		store, err := startStore(filepath.Join(state, "store"), getenv, out)
		if err != nil {
			return err
		}
		defer func() {
			if err := store.Close(); err != nil {
				fmt.Fprintln(out, "embedded store:", err)
			}
		}()
		redisURL = store.URL()
		fmt.Fprintln(out, "embedded store at", redisURL, "(durable, data in .cache/run/store; set REDIS_URL to use Redis)")
	}
	adminToken := getenv("BACHATA_ADMIN_TOKEN")
	if adminToken == "" {
		adminToken = devAdminToken
	}
	ports, err := localPorts(getenv)
	if err != nil {
		return err
	}
	suite, err := localsuite.Start(ctx, localsuite.Config{
		BinDir:     binDir,
		NATSURL:    natsURL,
		RedisURL:   redisURL,
		JWTSecret:  secret,
		AdminToken: adminToken,
		ServerName: getenv("BACHATA_SERVER_NAME"),
		Ports:      &ports,
		// The chat page's sign-in by name (POST /dev/token): on here unless
		// BACHATA_DEV_TOKENS=false; never in production.
		Env:    []string{"BACHATA_DEV_TOKENS=" + devTokens(getenv)},
		Logs:   out,
		LogDir: logDir,
	})
	if err != nil {
		return err
	}
	defer suite.Stop()
	if secret == devSecret {
		fmt.Fprintln(out, "BACHATA_JWT_SECRET is unset: using the development secret", strconv.Quote(devSecret))
	}
	if adminToken == devAdminToken {
		fmt.Fprintln(out, "BACHATA_ADMIN_TOKEN is unset: using the development admin token", strconv.Quote(devAdminToken))
	}
	fmt.Fprintf(out, `
Bachata is running. Logs: %s
  Chat page:  http://127.0.0.1:%d/  (sign in with any name: development sign-in, BACHATA_DEV_TOKENS=%s)
  WebSocket:  ws://127.0.0.1:%d/ws?device=<device>&token=<jwt>
  Admin:      http://127.0.0.1:%d/healthz  /readyz  /metrics
  A token:    go run ./deploy/local token alice
  Try it:     websocat "ws://127.0.0.1:%d/ws?token=$(go run ./deploy/local token alice)"
              then send {"id":"1","type":"direct","dest":"bob","data":{"text":"hi"}}
  As the server: curl -H "Authorization: Bearer $BACHATA_ADMIN_TOKEN" \
                   -d '{"type":"direct","dest":"bob","data":{"text":"from the server"}}' \
                   http://127.0.0.1:%d/v1/messages
Ctrl-C stops everything.
`, logDir, ports.GatewayWS, devTokens(getenv), ports.GatewayWS, ports.GatewayWS+1, ports.GatewayWS, ports.GatewayWS+1)
	return suite.Wait(ctx)
}

// devTokens is the gateway's BACHATA_DEV_TOKENS: "true" unless the
// variable says otherwise, so the chat page signs in with a name.
func devTokens(getenv func(string) string) string {
	if v := getenv("BACHATA_DEV_TOKENS"); v != "" {
		return v
	}
	return "true"
}

// localPorts returns the default ports moved by BACHATA_LOCAL_BASE_PORT
// (unset or empty: the defaults).
func localPorts(getenv func(string) string) (localsuite.Ports, error) {
	p := localsuite.DefaultPorts
	v := getenv("BACHATA_LOCAL_BASE_PORT")
	if v == "" {
		return p, nil
	}
	base, err := strconv.Atoi(v)
	shift := base - p.GatewayWS
	// The presence gRPC port is the highest of the set.
	if err != nil || base < 1 || p.PresenceGRPC+shift > 65535 {
		return p, fmt.Errorf("BACHATA_LOCAL_BASE_PORT=%q: want a port from 1 to %d", v, 65535-(p.PresenceGRPC-p.GatewayWS))
	}
	for _, port := range []*int{&p.GatewayWS, &p.RouterGRPC, &p.RouterHTTP, &p.DeliveryGRPC, &p.DeliveryHTTP, &p.PresenceGRPC, &p.PresenceHTTP} {
		*port += shift
	}
	return p, nil
}

func mintToken(secret, user string, ttl time.Duration) (string, error) {
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject:   user,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	})
	s, err := tok.SignedString([]byte(secret))
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

func startNATS(dir string) (*server.Server, error) {
	ns, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded nats: not ready after 10s")
	}
	return ns, nil
}
