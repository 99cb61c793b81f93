// Package idle is the load tool's idle scenario: open N WebSocket
// connections to one gateway, keep them idle (answering the server's
// pings) for a while, and report what each costs the gateway in memory.
//
// One process holds at most as many connections as its file descriptor
// limit (RLIMIT_NOFILE; Go raises the soft limit to the hard one at
// start). The scenario therefore splits the connections over worker
// processes, each a copy of this program started with -worker-first, and
// the parent only coordinates: it takes the gateway's readings, starts the
// workers, waits until every connection is up, reads again, holds, and
// releases the workers. Sources are bound round robin so that one source
// address's ephemeral ports (about 28,000) do not cap the count.
package idle

import (
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bachata-chat/bachata/tools/load/internal/loopback"
	"github.com/bachata-chat/bachata/tools/load/internal/token"
	"github.com/bachata-chat/bachata/tools/load/internal/usage"
)

// Limits of the flags: generous, but a typo must not become a million
// sockets or a week-long run.
const (
	MaxConns    = 1_000_000
	MaxParallel = 10_000
	MaxProcs    = 256
	MaxHold     = 24 * time.Hour
	// fdReserve is what a worker keeps for its own files (stdio, the
	// runtime's epoll, pipes) below its descriptor limit.
	fdReserve = 64
)

// Config is one idle run.
type Config struct {
	// Gateway is the WebSocket endpoint (flag -gateway).
	Gateway *url.URL
	// Conns is how many connections to open (flag -conns).
	Conns int
	// Sources are the local addresses bound round robin (flag -sources).
	Sources []netip.Addr
	// SourcesFlag is -sources as given, passed on to workers.
	SourcesFlag string
	// Secret signs the clients' HS256 tokens (flag -secret, default
	// $BACHATA_JWT_SECRET).
	Secret string
	// UserPrefix names the users: <prefix>0 … <prefix>N-1 (flag
	// -user-prefix).
	UserPrefix string
	// Hold is how long the connections stay open once all are up (flag
	// -hold); the idle reading is taken within it.
	Hold time.Duration
	// Settle is the pause between the last connection and the idle
	// reading (flag -settle).
	Settle time.Duration
	// GCWait bounds the wait for a completed GC cycle in the gateway before
	// each reading, so the heap figure holds live objects, not garbage;
	// 0 reads at once (flag -gc-wait).
	GCWait time.Duration
	// Parallel is the connects in flight per process (flag -parallel).
	Parallel int
	// Procs is the number of worker processes; 0 picks as few as the
	// descriptor limit allows (flag -procs).
	Procs int
	// ConnectTimeout bounds one connect, up to the ready frame (flag
	// -connect-timeout).
	ConnectTimeout time.Duration
	// GatewayPID is the gateway process to read VmRSS of; 0 skips (flag
	// -gateway-pid).
	GatewayPID int
	// MetricsURL is the gateway's admin /metrics; empty skips the runtime
	// figures (flag -gateway-metrics).
	MetricsURL string
	// WorkerFirst is set in a worker process: the index of its first user.
	// -1 in the parent (flag -worker-first, internal).
	WorkerFirst int
}

// ParseFlags reads the idle subcommand's flags (args without the program
// and subcommand names) and checks every limit. The -h output goes to
// help.
func ParseFlags(args []string, getenv func(string) string, help io.Writer) (Config, error) {
	var (
		c                     Config
		gateway, metrics, src string
	)
	fs := flag.NewFlagSet("idle", flag.ContinueOnError)
	fs.SetOutput(help)
	fs.StringVar(&gateway, "gateway", "ws://127.0.0.1:8080/ws", "gateway WebSocket URL; the host must be in 127.0.0.0/8")
	fs.IntVar(&c.Conns, "conns", 1000, "connections to open")
	fs.StringVar(&src, "sources", "127.0.0.2-127.0.0.9", "local addresses to bind, round robin: a list of addresses and ranges in 127.0.0.0/8")
	fs.StringVar(&c.Secret, "secret", "", "HS256 secret of the gateway's tokens (default $BACHATA_JWT_SECRET)")
	fs.StringVar(&c.UserPrefix, "user-prefix", "idle-", "users are <prefix>0 … <prefix>N-1")
	fs.DurationVar(&c.Hold, "hold", time.Minute, "how long to keep the connections once all are up")
	fs.DurationVar(&c.Settle, "settle", 5*time.Second, "pause after the last connect before the idle reading")
	fs.DurationVar(&c.GCWait, "gc-wait", 150*time.Second, "before each reading, wait up to this long for the gateway to finish a GC cycle (needs -gateway-metrics; 0: read at once)")
	fs.IntVar(&c.Parallel, "parallel", 200, "connects in flight per process")
	fs.IntVar(&c.Procs, "procs", 0, "worker processes; 0: as few as the file descriptor limit allows")
	fs.DurationVar(&c.ConnectTimeout, "connect-timeout", 30*time.Second, "bound on one connect, up to the ready frame")
	fs.IntVar(&c.GatewayPID, "gateway-pid", 0, "gateway process ID: read its VmRSS before and after")
	fs.StringVar(&metrics, "gateway-metrics", "", "gateway admin /metrics URL, like http://127.0.0.1:8081/metrics: read its heap, stacks and goroutines")
	fs.IntVar(&c.WorkerFirst, "worker-first", -1, "internal: run as a worker whose first user has this index")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if err := usage.NoArgs(fs); err != nil {
		return c, err
	}
	if c.Secret == "" {
		c.Secret = getenv("BACHATA_JWT_SECRET")
	}
	c.SourcesFlag = src
	var probs usage.Problems
	var err error
	if c.Gateway, err = loopback.CheckURL(gateway, "ws"); err != nil {
		probs.Flag("-gateway", err)
	}
	if metrics != "" {
		u, err := loopback.CheckURL(metrics, "http")
		if err != nil {
			probs.Flag("-gateway-metrics", err)
		} else {
			c.MetricsURL = u.String()
		}
	}
	if c.Sources, err = loopback.ParseSources(src); err != nil {
		probs.Flag("-sources", err)
	}
	probs.Addf(c.Conns < 1 || c.Conns > MaxConns, "-conns %d: want 1..%d", c.Conns, MaxConns)
	probs.Addf(len(c.Secret) < token.MinSecret, "-secret: want the gateway's HS256 secret, at least %d bytes (or set BACHATA_JWT_SECRET)", token.MinSecret)
	probs.Addf(c.UserPrefix == "" || strings.ContainsAny(c.UserPrefix, "@!#&%^:/ "), "-user-prefix %q: want a username prefix", c.UserPrefix)
	probs.Addf(c.Hold <= 0 || c.Hold > MaxHold, "-hold %s: want more than 0, at most %s", c.Hold, MaxHold)
	probs.Addf(c.Settle < 0, "-settle %s: want 0 or more", c.Settle)
	probs.Addf(c.GCWait < 0 || c.GCWait > time.Hour, "-gc-wait %s: want 0..1h", c.GCWait)
	probs.Addf(c.Parallel < 1 || c.Parallel > MaxParallel, "-parallel %d: want 1..%d", c.Parallel, MaxParallel)
	probs.Addf(c.Procs < 0 || c.Procs > MaxProcs, "-procs %d: want 0 (automatic) ..%d", c.Procs, MaxProcs)
	probs.Addf(c.ConnectTimeout <= 0, "-connect-timeout %s: want more than 0", c.ConnectTimeout)
	probs.Addf(c.GatewayPID < 0, "-gateway-pid %d: want a process ID", c.GatewayPID)
	probs.Addf(c.WorkerFirst < -1 || c.WorkerFirst > MaxConns, "-worker-first %d: out of range", c.WorkerFirst)
	if err := probs.Err(); err != nil {
		return c, err
	}
	if c.WorkerFirst < 0 {
		// Only the parent plans; a worker got a plan that fits.
		if err := c.plan(fdLimit(), portsPerSource()); err != nil {
			return c, err
		}
	}
	return c, nil
}

// plan checks the connections fit: in the ephemeral ports of the sources,
// and in the descriptor limit of each worker, choosing Procs when 0.
func (c *Config) plan(fds, ports int) error {
	if room := ports * len(c.Sources); c.Conns > room {
		return fmt.Errorf("%w: %d connections need more than the %d sources' %d ephemeral ports each (%d): give more -sources",
			usage.ErrUsage, c.Conns, len(c.Sources), ports, room)
	}
	perProc := fds - fdReserve
	if perProc < 1 {
		return fmt.Errorf("%w: the file descriptor limit (%d) leaves no room for connections", usage.ErrUsage, fds)
	}
	if c.Procs == 0 {
		c.Procs = (c.Conns + perProc - 1) / perProc
	}
	if c.Procs > MaxProcs {
		return fmt.Errorf("%w: %d connections need %d processes at %d descriptors each, more than %d", usage.ErrUsage, c.Conns, c.Procs, fds, MaxProcs)
	}
	c.Procs = min(c.Procs, c.Conns)
	if share := (c.Conns + c.Procs - 1) / c.Procs; share > perProc {
		return fmt.Errorf("%w: %d connections per process exceed the file descriptor limit %d (ulimit -n): use -procs %d or more",
			usage.ErrUsage, share, fds, (c.Conns+perProc-1)/perProc)
	}
	return nil
}

// share is the first user index and the count of worker i of Procs.
func (c *Config) share(i int) (first, n int) {
	base, extra := c.Conns/c.Procs, c.Conns%c.Procs
	first = i*base + min(i, extra)
	n = base
	if i < extra {
		n++
	}
	return first, n
}

// workerArgs are the flags that make a copy of this program worker i.
func (c *Config) workerArgs(i int) []string {
	first, n := c.share(i)
	return []string{
		"idle",
		"-worker-first=" + strconv.Itoa(first),
		"-conns=" + strconv.Itoa(n),
		"-gateway=" + c.Gateway.String(),
		"-sources=" + c.SourcesFlag,
		"-user-prefix=" + c.UserPrefix,
		"-hold=" + c.Hold.String(),
		"-parallel=" + strconv.Itoa(c.Parallel),
		"-connect-timeout=" + c.ConnectTimeout.String(),
		// The secret goes through the environment: arguments show in ps.
	}
}

// fdLimit is this process's descriptor limit; Go has raised the soft limit
// to the hard one, and children start with the same.
func fdLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 1024
	}
	return int(min(rl.Cur, 1<<30)) //nolint:gosec // clamped
}

// portsPerSource is the size of the kernel's ephemeral port range: how
// many connections one source address can make.
func portsPerSource() int {
	const fallback = 60999 - 32768 + 1
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return fallback
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return fallback
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || hi < lo {
		return fallback
	}
	return hi - lo + 1
}
