// Package localsuite runs the whole Bachata suite on one machine as separate
// processes — presence, delivery, router and gateway, any number of each —
// against given NATS and Redis URLs. `make run` uses it for a one-command
// local suite, and the end-to-end tests use it to kill and restart real
// service processes.
package localsuite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Service names the four binaries.
type Service string

// The four services, in the order they start.
const (
	Presence Service = "presence"
	Delivery Service = "delivery"
	Router   Service = "router"
	Gateway  Service = "gateway"
)

// Config describes one suite.
type Config struct {
	// BinDir holds the four binaries, named after their services.
	BinDir string
	// NATSURL and RedisURL are the servers every service uses.
	NATSURL, RedisURL string
	// JWTSecret signs client tokens (HS256).
	JWTSecret string
	// AdminToken is the bearer token of the gateways' admin API; empty
	// leaves the API disabled.
	AdminToken string
	// ServerName is the server part of entity IDs; default "localhost".
	ServerName string
	// Prefix namespaces NATS subjects and Redis keys; default "bachata".
	Prefix string
	// Gateways is how many gateways to run; default 1.
	Gateways int
	// Deliveries is how many delivery instances to run; default 1. The
	// gateways and the router balance over all of them.
	Deliveries int
	// Presences is how many presence instances to run; default 1. The
	// gateways and delivery balance over all of them.
	Presences int
	// Routers is how many router instances to run; default 1. The
	// gateways balance over all of them.
	Routers int
	// Ports, when set, fixes every listener: the gateway i gets
	// WS = Ports.GatewayWS+2i and admin = Ports.GatewayWS+2i+1. Zero picks
	// free ports.
	Ports *Ports
	// Env adds variables to every service, like BACHATA_LOG_LEVEL=debug.
	Env []string
	// Logs receives every service's output; nil discards it. Output is also
	// kept in LogDir/<instance>.log when LogDir is set.
	Logs   io.Writer
	LogDir string
}

// Ports fixes the listeners of a suite that runs at known addresses.
type Ports struct {
	GatewayWS                  int // gateway i: WS GatewayWS+2i, admin GatewayWS+2i+1
	RouterGRPC, RouterHTTP     int
	DeliveryGRPC, DeliveryHTTP int
	PresenceGRPC, PresenceHTTP int
}

// DefaultPorts are the documented defaults of `make run`.
var DefaultPorts = Ports{
	GatewayWS:  8080,
	RouterGRPC: 9081, RouterHTTP: 8181,
	DeliveryGRPC: 9082, DeliveryHTTP: 8182,
	PresenceGRPC: 9083, PresenceHTTP: 8183,
}

// Instance is one running service process.
type Instance struct {
	// Name is unique in the suite, like "gateway-1".
	Name string
	// Service is the binary it runs.
	Service Service
	// Addr is the main listener: gRPC, or WebSocket for a gateway.
	Addr string
	// HTTPAddr serves /healthz, /readyz and /metrics (and the admin API on
	// a gateway).
	HTTPAddr string
	// GatewayID is set for gateways.
	GatewayID string

	args []string
	env  []string

	mu     sync.Mutex
	proc   *os.Process
	exited chan struct{}
}

// Suite is a running set of service processes.
type Suite struct {
	cfg       Config
	instances []*Instance
}

// Start launches the suite and returns once every instance is ready, or
// stops what it started and returns the error.
func Start(ctx context.Context, cfg Config) (*Suite, error) {
	if cfg.ServerName == "" {
		cfg.ServerName = "localhost"
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "bachata"
	}
	if cfg.Gateways <= 0 {
		cfg.Gateways = 1
	}
	s := &Suite{cfg: cfg}
	if err := s.plan(ctx); err != nil {
		return nil, err
	}
	for _, in := range s.instances {
		if err := s.startInstance(ctx, in); err != nil {
			s.Stop()
			return nil, err
		}
	}
	return s, nil
}

func (s *Suite) plan(ctx context.Context) error {
	port := func(fixed int) (string, error) {
		if s.cfg.Ports != nil {
			return net.JoinHostPort("127.0.0.1", strconv.Itoa(fixed)), nil
		}
		l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("localsuite: pick a port: %w", err)
		}
		defer func() { _ = l.Close() }()
		return l.Addr().String(), nil
	}
	p := DefaultPorts
	if s.cfg.Ports != nil {
		p = *s.cfg.Ports
	}
	var errs []error
	must := func(a string, err error) string { errs = append(errs, err); return a }
	// scaled plans n instances of a service: the first on the fixed ports
	// (when set), the others on free ones.
	scaled := func(svc Service, n, grpcPort, httpPort int) ([]*Instance, []string) {
		var ins []*Instance
		var addrs []string
		for i := range max(n, 1) {
			g, h := grpcPort, httpPort
			if i > 0 {
				g, h = 0, 0
			}
			in := &Instance{Name: fmt.Sprintf("%s-%d", svc, i+1), Service: svc, Addr: must(port(g)), HTTPAddr: must(port(h))}
			ins, addrs = append(ins, in), append(addrs, in.Addr)
		}
		return ins, addrs
	}
	if (s.cfg.Deliveries > 1 || s.cfg.Presences > 1 || s.cfg.Routers > 1) && s.cfg.Ports != nil {
		return errors.New("localsuite: fixed ports allow one delivery, presence and router instance")
	}
	presences, presenceAddrs := scaled(Presence, s.cfg.Presences, p.PresenceGRPC, p.PresenceHTTP)
	deliveries, deliveryAddrs := scaled(Delivery, s.cfg.Deliveries, p.DeliveryGRPC, p.DeliveryHTTP)
	routers, routerAddrs := scaled(Router, s.cfg.Routers, p.RouterGRPC, p.RouterHTTP)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	common := append([]string{
		"NATS_URL=" + s.cfg.NATSURL,
		"REDIS_URL=" + s.cfg.RedisURL,
		"BACHATA_NATS_PREFIX=" + s.cfg.Prefix,
		"BACHATA_REDIS_PREFIX=" + s.cfg.Prefix,
		"BACHATA_SERVER_NAME=" + s.cfg.ServerName,
		"BACHATA_JWT_SECRET=" + s.cfg.JWTSecret,
		"BACHATA_ADMIN_TOKEN=" + s.cfg.AdminToken,
		"BACHATA_PRESENCE_ADDR=" + strings.Join(presenceAddrs, ","),
		"BACHATA_DELIVERY_ADDR=" + strings.Join(deliveryAddrs, ","),
		"BACHATA_ROUTER_ADDR=" + strings.Join(routerAddrs, ","),
		"BACHATA_LOG_FORMAT=text",
	}, s.cfg.Env...)
	for _, in := range slices.Concat(presences, deliveries, routers) {
		in.env = append([]string{"BACHATA_GRPC_ADDR=" + in.Addr, "BACHATA_HTTP_ADDR=" + in.HTTPAddr}, common...)
		s.instances = append(s.instances, in)
	}
	for i := range s.cfg.Gateways {
		gw := &Instance{
			Name:      fmt.Sprintf("gateway-%d", i+1),
			Service:   Gateway,
			Addr:      must(port(p.GatewayWS + 2*i)),
			HTTPAddr:  must(port(p.GatewayWS + 2*i + 1)),
			GatewayID: fmt.Sprintf("gw-%d", i+1),
		}
		gw.env = append([]string{
			"BACHATA_WS_ADDR=" + gw.Addr,
			"BACHATA_ADMIN_ADDR=" + gw.HTTPAddr,
			"BACHATA_GATEWAY_ID=" + gw.GatewayID,
		}, common...)
		s.instances = append(s.instances, gw)
	}
	return errors.Join(errs...)
}

// Instances lists every instance in start order.
func (s *Suite) Instances() []*Instance { return s.instances }

// Instance returns the named instance, or nil.
func (s *Suite) Instance(name string) *Instance {
	for _, in := range s.instances {
		if in.Name == name {
			return in
		}
	}
	return nil
}

// Gateways lists the gateway instances.
func (s *Suite) Gateways() []*Instance {
	var out []*Instance
	for _, in := range s.instances {
		if in.Service == Gateway {
			out = append(out, in)
		}
	}
	return out
}

func (s *Suite) output(in *Instance) (io.Writer, func(), error) {
	var ws []io.Writer
	closeFn := func() {}
	if s.cfg.Logs != nil {
		ws = append(ws, &prefixWriter{prefix: []byte(in.Name + " | "), w: s.cfg.Logs})
	}
	if s.cfg.LogDir != "" {
		f, err := os.OpenFile(filepath.Join(s.cfg.LogDir, in.Name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("localsuite: open log: %w", err)
		}
		ws = append(ws, f)
		closeFn = func() { _ = f.Close() }
	}
	if len(ws) == 0 {
		return io.Discard, closeFn, nil
	}
	return io.MultiWriter(ws...), closeFn, nil
}

func (s *Suite) startInstance(ctx context.Context, in *Instance) error {
	out, closeLog, err := s.output(in)
	if err != nil {
		return err
	}
	// The process outlives ctx, which only bounds the start; Stop ends it.
	cmd := exec.CommandContext(context.WithoutCancel(ctx), filepath.Join(s.cfg.BinDir, string(in.Service)), in.args...) //nolint:gosec // binaries of this repo
	cmd.Env = append(os.Environ(), in.env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		closeLog()
		return fmt.Errorf("localsuite: start %s: %w", in.Name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		closeLog()
		close(exited)
	}()
	in.mu.Lock()
	in.proc, in.exited = cmd.Process, exited
	in.mu.Unlock()
	return in.waitReady(ctx, exited)
}

func (in *Instance) waitReady(ctx context.Context, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+in.HTTPAddr+"/readyz", nil)
		if err != nil {
			return fmt.Errorf("localsuite: readyz request: %w", err)
		}
		if resp, err := client.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("localsuite: %s exited before it was ready (see its log)", in.Name)
		case <-ctx.Done():
			return fmt.Errorf("localsuite: %s not ready: %w", in.Name, ctx.Err())
		case <-tick.C:
		}
	}
}

// PID is the instance's process ID, or 0 when it is not running.
func (in *Instance) PID() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.proc == nil {
		return 0
	}
	return in.proc.Pid
}

// Kill stops an instance with SIGKILL, as a crash would, and waits for it.
func (s *Suite) Kill(in *Instance) { in.signal(syscall.SIGKILL) }

// Terminate stops an instance with SIGTERM and waits until it has exited,
// as an orderly shutdown or a rolling restart would.
func (s *Suite) Terminate(in *Instance) { in.signal(syscall.SIGTERM) }

// Restart starts a stopped instance again with the same addresses.
func (s *Suite) Restart(ctx context.Context, in *Instance) error {
	in.signal(syscall.SIGKILL)
	return s.startInstance(ctx, in)
}

func (in *Instance) signal(sig syscall.Signal) {
	in.mu.Lock()
	proc, exited := in.proc, in.exited
	in.proc = nil
	in.mu.Unlock()
	if proc == nil {
		return
	}
	_ = proc.Signal(sig)
	<-exited
}

// Stop terminates every instance, gateways first so clients are closed
// before the services behind them go away.
func (s *Suite) Stop() {
	for i := len(s.instances) - 1; i >= 0; i-- {
		s.Terminate(s.instances[i])
	}
}

// Wait blocks until ctx ends or any instance exits on its own, and says
// which one did.
func (s *Suite) Wait(ctx context.Context) error {
	cases := make(chan *Instance, len(s.instances))
	for _, in := range s.instances {
		in.mu.Lock()
		exited := in.exited
		in.mu.Unlock()
		go func() {
			select {
			case <-exited:
				cases <- in
			case <-ctx.Done():
			}
		}()
	}
	select {
	case <-ctx.Done():
		return nil
	case in := <-cases:
		return fmt.Errorf("localsuite: %s exited", in.Name)
	}
}

// prefixWriter prefixes each line with the instance name so interleaved
// logs stay readable.
type prefixWriter struct {
	mu     sync.Mutex
	prefix []byte
	w      io.Writer
	mid    bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []byte
	for _, c := range b {
		if !p.mid {
			out = append(out, p.prefix...)
			p.mid = true
		}
		out = append(out, c)
		if c == '\n' {
			p.mid = false
		}
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, fmt.Errorf("localsuite: write log: %w", err)
	}
	return len(b), nil
}
