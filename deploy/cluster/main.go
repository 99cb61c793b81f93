// Command bachata-cluster runs a scaled-out Bachata on this machine in the
// foreground (`make cluster`): a three-node NATS cluster (embedded, its
// nodes joined by routes), Redis — one append-only redis-server, or with
// -redis-cluster a Redis Cluster of three masters — and at least two
// instances of every service, all on 127.0.0.1, every log in one folder.
// Ctrl-C or SIGTERM stops everything: the services first (gateways
// before what they call), then Redis, then NATS.
//
// It needs redis-server on PATH and the four service binaries (`make
// build`). State is fresh on every start: the Redis data under
// .cache/cluster is wiped, so a cluster never meets a stale one.
// BACHATA_* variables in the environment reach every service, so
// `BACHATA_RATE_LIMIT=0 make cluster` runs one for a load test.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/bachata-chat/bachata/libs/localsuite"
)

// devSecret and devAdminToken are used when BACHATA_JWT_SECRET and
// BACHATA_ADMIN_TOKEN are unset, as `make run` does; printed at start, for
// a developer's machine only.
const (
	devSecret     = "bachata-dev-secret-not-for-production" //nolint:gosec // a published development secret, on purpose
	devAdminToken = "bachata-dev-admin-not-for-production"  //nolint:gosec // a published development token, on purpose
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bachata-cluster:", err)
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	binDir, stateDir                                string
	gateways, routers, deliveries, presences, natsN int
	redisCluster                                    bool
}

func parse(args []string, out io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("bachata-cluster", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.binDir, "bin", "bin", "folder of the four service binaries (make build)")
	fs.StringVar(&c.stateDir, "dir", filepath.Join(".cache", "cluster"), "state folder: logs/, redis data, endpoints.json; wiped at start")
	fs.IntVar(&c.gateways, "gateways", 2, "gateway instances")
	fs.IntVar(&c.routers, "routers", 2, "router instances")
	fs.IntVar(&c.deliveries, "deliveries", 2, "delivery instances")
	fs.IntVar(&c.presences, "presences", 2, "presence instances")
	fs.IntVar(&c.natsN, "nats-nodes", 3, "NATS cluster nodes")
	fs.BoolVar(&c.redisCluster, "redis-cluster", false, "run a Redis Cluster of three masters instead of one redis-server")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var errs []error
	for name, n := range map[string]int{"-gateways": c.gateways, "-routers": c.routers, "-deliveries": c.deliveries, "-presences": c.presences, "-nats-nodes": c.natsN} {
		if n < 1 || n > 16 {
			errs = append(errs, fmt.Errorf("%s %d: want 1 to 16", name, n))
		}
	}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	return c, errors.Join(errs...)
}

func run(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	c, err := parse(args[1:], out)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	cl, err := start(ctx, c, getenv, out)
	if err != nil {
		return err
	}
	defer cl.stop(out)
	if err := cl.printEndpoints(out); err != nil {
		return err
	}
	return cl.suite.Wait(ctx)
}

// cluster is everything started, stopped in reverse.
type cluster struct {
	stateDir, secret, adminToken string
	nats                         *natsCluster
	redis                        *redisSet
	suite                        *localsuite.Suite
}

func start(ctx context.Context, c config, getenv func(string) string, out io.Writer) (cl *cluster, err error) {
	state, err := filepath.Abs(c.stateDir)
	if err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	bin, err := filepath.Abs(c.binDir)
	if err != nil {
		return nil, fmt.Errorf("bin dir: %w", err)
	}
	if err := os.RemoveAll(state); err != nil {
		return nil, fmt.Errorf("wipe state dir: %w", err)
	}
	logDir := filepath.Join(state, "logs")
	if err := os.MkdirAll(logDir, 0o750); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	cl = &cluster{stateDir: state, secret: getenv("BACHATA_JWT_SECRET"), adminToken: getenv("BACHATA_ADMIN_TOKEN")}
	if cl.secret == "" {
		cl.secret = devSecret
	}
	if cl.adminToken == "" {
		cl.adminToken = devAdminToken
	}
	defer func() {
		if err != nil {
			cl.stop(out)
		}
	}()
	if cl.nats, err = startNATSCluster(c.natsN, filepath.Join(logDir, "nats.log")); err != nil {
		return cl, err
	}
	fmt.Fprintf(out, "NATS cluster of %d nodes: %s\n", c.natsN, cl.nats.URL())
	masters := 0
	if c.redisCluster {
		masters = 3
	}
	if cl.redis, err = startRedis(ctx, state, logDir, masters); err != nil {
		return cl, err
	}
	fmt.Fprintln(out, "Redis:", cl.redis.URL())
	cl.suite, err = localsuite.Start(ctx, localsuite.Config{
		BinDir:     bin,
		NATSURL:    cl.nats.URL(),
		RedisURL:   cl.redis.URL(),
		JWTSecret:  cl.secret,
		AdminToken: cl.adminToken,
		ServerName: getenv("BACHATA_SERVER_NAME"),
		Gateways:   c.gateways,
		Routers:    c.routers,
		Deliveries: c.deliveries,
		Presences:  c.presences,
		LogDir:     logDir,
	})
	if err != nil {
		return cl, fmt.Errorf("start services (logs in %s): %w", logDir, err)
	}
	return cl, nil
}

// stop ends everything that was started: services, then Redis, then NATS.
func (cl *cluster) stop(out io.Writer) {
	if cl.suite != nil {
		cl.suite.Stop()
	}
	if cl.redis != nil {
		if err := cl.redis.stop(); err != nil {
			fmt.Fprintln(out, "stop redis:", err)
		}
	}
	if cl.nats != nil {
		cl.nats.shutdown()
	}
	fmt.Fprintln(out, "stopped; logs in", filepath.Join(cl.stateDir, "logs"))
}

// Endpoints is what endpoints.json holds, for scripts and the load tool.
type Endpoints struct {
	Gateways   []string `json:"gateways"`
	Admin      []string `json:"admin"`
	NATS       string   `json:"nats"`
	Redis      string   `json:"redis"`
	PIDs       []int    `json:"pids"`
	Logs       string   `json:"logs"`
	JWTSecret  string   `json:"jwt_secret"`
	AdminToken string   `json:"admin_token"`
}

func (cl *cluster) endpoints() Endpoints {
	e := Endpoints{NATS: cl.nats.URL(), Redis: cl.redis.URL(), Logs: filepath.Join(cl.stateDir, "logs"), JWTSecret: cl.secret, AdminToken: cl.adminToken}
	for _, in := range cl.suite.Gateways() {
		e.Gateways = append(e.Gateways, "ws://"+in.Addr+"/ws")
		e.Admin = append(e.Admin, "http://"+in.HTTPAddr)
	}
	for _, in := range cl.suite.Instances() {
		if pid := in.PID(); pid > 0 {
			e.PIDs = append(e.PIDs, pid)
		}
	}
	return e
}

func (cl *cluster) printEndpoints(out io.Writer) error {
	e := cl.endpoints()
	b, err := json.MarshalIndent(e, "", "  ") //nolint:gosec // the development secret and token, for the load tool on this machine
	if err != nil {
		return fmt.Errorf("endpoints: %w", err)
	}
	path := filepath.Join(cl.stateDir, "endpoints.json")
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil { //nolint:gosec // the operator's own -dir
		return fmt.Errorf("endpoints: %w", err)
	}
	fmt.Fprintln(out, "\nBachata cluster is running.")
	for _, in := range cl.suite.Instances() {
		fmt.Fprintf(out, "  %-11s %-21s http %s\n", in.Name, in.Addr, in.HTTPAddr)
	}
	pids := make([]string, len(e.PIDs))
	for i, p := range e.PIDs {
		pids[i] = fmt.Sprint(p)
	}
	fmt.Fprintf(out, `
  WebSocket: %s
  Admin:     %s
  Logs:      %s
  Endpoints: %s
  Load:      BACHATA_JWT_SECRET=%s go run ./tools/load/cmd/bachata-load direct -gateways %s -server-pids %s
  (start with BACHATA_RATE_LIMIT=0 for load runs: the default is 20 messages/s per user)
Ctrl-C stops everything.
`, strings.Join(e.Gateways, " "), strings.Join(e.Admin, " "), e.Logs, path, e.JWTSecret, strings.Join(e.Gateways, ","), strings.Join(pids, ","))
	return nil
}
