// Package storm is the load tool's connection storm: connects opened at a
// steady rate, each held for a while and closed, for a duration. It
// reports the rates achieved, the connect latency (dial to the ready
// frame) and every failure by HTTP status or close code.
package storm

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/bachata-chat/bachata/tools/load/internal/client"
	"github.com/bachata-chat/bachata/tools/load/internal/hist"
	"github.com/bachata-chat/bachata/tools/load/internal/loopback"
	"github.com/bachata-chat/bachata/tools/load/internal/token"
	"github.com/bachata-chat/bachata/tools/load/internal/usage"
	"github.com/gobwas/ws"
)

// Limits of the flags.
const (
	MaxRate     = 100_000
	MaxInFlight = 100_000
	MaxDuration = 24 * time.Hour
)

// Config is one storm.
type Config struct {
	// Gateways are the WebSocket endpoints, used round robin (flag
	// -gateways).
	Gateways []*url.URL
	// Rate is connects started per second (flag -rate).
	Rate float64
	// Duration is how long to keep starting them (flag -duration).
	Duration time.Duration
	// Hold is how long each connection stays open before the client
	// closes it (flag -hold).
	Hold time.Duration
	// Users is how many distinct users connect, round robin (flag
	// -users). Each connects as device "default", so a user's next
	// connection replaces its previous one: more users than Rate × Hold
	// keep the storm from closing its own connections.
	Users int
	// InFlight bounds the connections open or opening at once; a connect
	// due beyond it is counted as skipped (flag -in-flight).
	InFlight int
	// Secret signs the tokens (flag -secret, default $BACHATA_JWT_SECRET).
	Secret string
	// UserPrefix starts the user names (flag -user-prefix).
	UserPrefix string
	// ConnectTimeout bounds one connect (flag -connect-timeout).
	ConnectTimeout time.Duration
	// JSON prints the report as JSON (flag -json).
	JSON bool
}

// ParseFlags reads the storm subcommand's flags.
func ParseFlags(args []string, getenv func(string) string, help io.Writer) (Config, error) {
	var c Config
	var gateways string
	fs := flag.NewFlagSet("storm", flag.ContinueOnError)
	fs.SetOutput(help)
	fs.StringVar(&gateways, "gateways", "ws://127.0.0.1:8080/ws", "comma-separated gateway WebSocket URLs; hosts must be in 127.0.0.0/8")
	fs.Float64Var(&c.Rate, "rate", 200, "connects per second")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long to keep connecting")
	fs.DurationVar(&c.Hold, "hold", time.Second, "how long each connection stays open")
	fs.IntVar(&c.Users, "users", 10_000, "distinct users, connected round robin; keep it above rate × hold, since a user's new connection replaces the previous one (the server closes it)")
	fs.IntVar(&c.InFlight, "in-flight", 10_000, "most connections open or opening at once")
	fs.StringVar(&c.Secret, "secret", "", "HS256 secret of the gateway's tokens (default $BACHATA_JWT_SECRET)")
	fs.StringVar(&c.UserPrefix, "user-prefix", "storm-", "users are <prefix>0 … <prefix>N-1")
	fs.DurationVar(&c.ConnectTimeout, "connect-timeout", 10*time.Second, "bound on one connect")
	fs.BoolVar(&c.JSON, "json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if err := usage.NoArgs(fs); err != nil {
		return c, err
	}
	if c.Secret == "" {
		c.Secret = getenv("BACHATA_JWT_SECRET")
	}
	var probs usage.Problems
	gws, err := loopback.CheckURLs(gateways, "ws")
	if err != nil {
		probs.Flag("-gateways", err)
	}
	c.Gateways = gws
	probs.Addf(len(c.Gateways) == 0, "-gateways: want at least one")
	probs.Addf(c.Rate <= 0 || c.Rate > MaxRate, "-rate %g: want more than 0, at most %d", c.Rate, MaxRate)
	probs.Addf(c.Duration <= 0 || c.Duration > MaxDuration, "-duration %s: want more than 0, at most %s", c.Duration, MaxDuration)
	probs.Addf(c.Hold < 0 || c.Hold > MaxDuration, "-hold %s: want 0 to %s", c.Hold, MaxDuration)
	probs.Addf(c.Users < 1 || c.Users > 1_000_000, "-users %d: want 1 to 1000000", c.Users)
	probs.Addf(c.InFlight < 1 || c.InFlight > MaxInFlight, "-in-flight %d: want 1 to %d", c.InFlight, MaxInFlight)
	probs.Addf(len(c.Secret) < token.MinSecret, "-secret or $BACHATA_JWT_SECRET: want at least %d bytes", token.MinSecret)
	probs.Addf(c.ConnectTimeout <= 0, "-connect-timeout %s: want more than 0", c.ConnectTimeout)
	return c, probs.Err()
}

// Report is a storm's outcome.
type Report struct {
	Gateways []string      `json:"gateways"`
	Rate     float64       `json:"rate"`
	Duration time.Duration `json:"duration_ns"`
	Hold     time.Duration `json:"hold_ns"`
	// Attempted is connects started; Skipped those due while InFlight
	// were open.
	Attempted int64 `json:"attempted"`
	Skipped   int64 `json:"skipped"`
	// Connected got their ready frame; Disconnected were closed by the
	// client after their hold.
	Connected    int64 `json:"connected"`
	Disconnected int64 `json:"disconnected"`
	// StartedPerSec is connects started per second of the storm;
	// ConnectsPerSec and DisconnectsPerSec are the ones that succeeded and
	// the closes, per second of the storm (the last hold's closes fall
	// after it: they count, the time does not).
	StartedPerSec     float64 `json:"started_per_sec"`
	ConnectsPerSec    float64 `json:"connects_per_sec"`
	DisconnectsPerSec float64 `json:"disconnects_per_sec"`
	// Failures counts failed connects by HTTP status ("http 503"),
	// timeout or other error; Ended counts connections the server closed
	// during their hold, by close code.
	Failures map[string]int64 `json:"failures,omitempty"`
	Ended    map[string]int64 `json:"server_closed,omitempty"`
	// Connect is dial → ready frame for the connects that succeeded.
	Connect hist.Summary `json:"connect_latency"`
	// Elapsed is the first connect to the last close.
	Elapsed time.Duration `json:"elapsed_ns"`
}

type tally struct {
	mu                                  sync.Mutex
	attempted, skipped, connected, disc int64
	failures, ended                     map[string]int64
	lat                                 hist.Histogram
}

func (t *tally) count(m *map[string]int64, key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if *m == nil {
		*m = make(map[string]int64)
	}
	(*m)[key]++
}

// failure names why a connect failed.
func failure(err error) string {
	var se ws.StatusError
	var ne net.Error
	var ce *client.CloseError
	switch {
	case errors.As(err, &se):
		return "http " + strconv.Itoa(int(se))
	case errors.As(err, &ce):
		return "close " + strconv.Itoa(int(ce.Code))
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, client.ErrProtocol):
		return "protocol"
	default:
		return "error"
	}
}

// Run runs the storm and writes the report to out.
func Run(ctx context.Context, c Config, out io.Writer) (*Report, error) {
	m, err := token.NewMinter(c.Secret, c.Duration+c.Hold+time.Hour)
	if err != nil {
		return nil, fmt.Errorf("token minter: %w", err)
	}
	toks := make([]string, c.Users)
	for i := range toks {
		if toks[i], err = m.Mint(c.UserPrefix + strconv.Itoa(i)); err != nil {
			return nil, err
		}
	}
	var (
		t     tally
		wg    sync.WaitGroup
		slots = make(chan struct{}, c.InFlight)
	)
	// Connects are due at fixed times from the start; one that comes due
	// while the loop is late (a busy machine) starts at once, so the
	// rate asked for is the rate started unless the in-flight bound
	// skips some.
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
launch:
	for i := 0; ; i++ {
		due := time.Duration(float64(i) * float64(time.Second) / c.Rate)
		if due >= c.Duration {
			break
		}
		if d := time.Until(start.Add(due)); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				break launch
			case <-timer.C:
			}
		}
		t.mu.Lock()
		t.attempted++
		t.mu.Unlock()
		select {
		case slots <- struct{}{}:
			wg.Go(func() {
				defer func() { <-slots }()
				one(ctx, c, c.Gateways[i%len(c.Gateways)], toks[i%len(toks)], &t)
			})
		default:
			t.mu.Lock()
			t.skipped++
			t.mu.Unlock()
		}
	}
	window := time.Since(start)
	wg.Wait()
	elapsed := time.Since(start)
	r := &Report{
		Rate: c.Rate, Duration: c.Duration, Hold: c.Hold,
		Attempted: t.attempted, Skipped: t.skipped, Connected: t.connected, Disconnected: t.disc,
		Failures: t.failures, Ended: t.ended, Connect: t.lat.Summary(), Elapsed: elapsed,
	}
	for _, g := range c.Gateways {
		r.Gateways = append(r.Gateways, g.String())
	}
	r.StartedPerSec = float64(r.Attempted) / window.Seconds()
	r.ConnectsPerSec = float64(r.Connected) / window.Seconds()
	r.DisconnectsPerSec = float64(r.Disconnected) / window.Seconds()
	if err := r.Write(out, c.JSON); err != nil {
		return r, err
	}
	return r, ctx.Err()
}

// one opens a connection, holds it and closes it.
func one(ctx context.Context, c Config, gw *url.URL, tok string, t *tally) {
	t0 := time.Now()
	cctx, cancel := context.WithTimeout(ctx, c.ConnectTimeout)
	conn, err := client.Dial(cctx, client.Options{URL: gw, Token: tok})
	cancel()
	if err != nil {
		t.count(&t.failures, failure(err))
		return
	}
	t.mu.Lock()
	t.connected++
	t.lat.Record(time.Since(t0))
	t.mu.Unlock()
	ended := make(chan error, 1)
	var stats client.Stats
	go func() { ended <- conn.Run(&stats) }()
	hold := time.NewTimer(c.Hold)
	defer hold.Stop()
	select {
	case err := <-ended:
		t.count(&t.ended, failure(err))
		return
	case <-hold.C:
	case <-ctx.Done():
	}
	_ = conn.Close()
	if err := <-ended; !errors.Is(err, client.ErrClosedHere) {
		// The server's close crossed ours: it ended the connection.
		t.count(&t.ended, failure(err))
		return
	}
	t.mu.Lock()
	t.disc++
	t.mu.Unlock()
}

// Write prints the report, as indented JSON when asJSON is set.
func (r *Report) Write(w io.Writer, asJSON bool) error {
	if asJSON {
		return usage.WriteJSON(w, r)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, a ...any) { _, _ = fmt.Fprintf(tw, format+"\n", a...) }
	p("storm: %g connects/s for %s, each held %s, %d gateway(s)", r.Rate, r.Duration, r.Hold, len(r.Gateways))
	p("attempted\t%d\t%.1f/s, skipped (in-flight bound) %d", r.Attempted, r.StartedPerSec, r.Skipped)
	p("connected\t%d\t%.1f/s", r.Connected, r.ConnectsPerSec)
	p("disconnected\t%d\t%.1f/s", r.Disconnected, r.DisconnectsPerSec)
	p("failed\t%s", codes(r.Failures))
	p("closed by server\t%s", codes(r.Ended))
	s := r.Connect
	p("connect latency\tp50 %.2fms  p90 %.2fms  p99 %.2fms  max %.2fms", ms(s.P50), ms(s.P90), ms(s.P99), ms(s.Max))
	p("elapsed\t%s", r.Elapsed.Round(time.Millisecond))
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func codes(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s×%d", k, m[k])
	}
	return b.String()
}
