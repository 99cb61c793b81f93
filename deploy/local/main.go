// Command bachata-local runs the whole suite on this machine in the
// foreground (`make run`) and mints development tokens (`token <user>`).
//
// NATS comes from NATS_URL, else an embedded NATS server; Redis from
// REDIS_URL, else a redis-server it starts with append-only persistence in
// .cache/run/redis so queued messages survive a restart.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
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
		url, stopRedis, err := startRedis(ctx, filepath.Join(state, "redis"))
		if err != nil {
			return err
		}
		defer stopRedis()
		redisURL = url
		fmt.Fprintln(out, "local redis-server at", redisURL, "(append-only, data in .cache/run/redis)")
	}
	adminToken := getenv("BACHATA_ADMIN_TOKEN")
	if adminToken == "" {
		adminToken = devAdminToken
	}
	ports := localsuite.DefaultPorts
	suite, err := localsuite.Start(ctx, localsuite.Config{
		BinDir:     binDir,
		NATSURL:    natsURL,
		RedisURL:   redisURL,
		JWTSecret:  secret,
		AdminToken: adminToken,
		ServerName: getenv("BACHATA_SERVER_NAME"),
		Ports:      &ports,
		Logs:       out,
		LogDir:     logDir,
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
  WebSocket:  ws://127.0.0.1:%d/ws?device=<device>&token=<jwt>
  Admin:      http://127.0.0.1:%d/healthz  /readyz  /metrics
  A token:    go run ./deploy/local token alice
  Try it:     websocat "ws://127.0.0.1:%d/ws?token=$(go run ./deploy/local token alice)"
              then send {"id":"1","type":"direct","dest":"bob","data":{"text":"hi"}}
  As the server: curl -H "Authorization: Bearer $BACHATA_ADMIN_TOKEN" \
                   -d '{"type":"direct","dest":"bob","data":{"text":"from the server"}}' \
                   http://127.0.0.1:%d/v1/messages
Ctrl-C stops everything.
`, logDir, ports.GatewayWS, ports.GatewayWS+1, ports.GatewayWS, ports.GatewayWS+1)
	return suite.Wait(ctx)
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

func startRedis(ctx context.Context, dir string) (string, func(), error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", nil, fmt.Errorf("redis dir: %w", err)
	}
	l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("redis port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	cmd := exec.CommandContext(ctx, "redis-server", //nolint:gosec // fixed binary, our own arguments
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
		"--logfile", filepath.Join(dir, "redis.log"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start redis-server (run `make deps` to install it): %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		d := net.Dialer{Timeout: 200 * time.Millisecond}
		c, err := d.DialContext(wctx, "tcp", addr)
		if err == nil {
			_ = c.Close()
			break
		}
		select {
		case <-wctx.Done():
			_ = cmd.Process.Kill()
			return "", nil, fmt.Errorf("redis-server on %s not ready: %w", addr, err)
		case <-tick.C:
		}
	}
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
	return "redis://" + addr + "/0", stop, nil
}
