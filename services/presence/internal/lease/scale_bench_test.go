package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/bachata-chat/bachata/libs/natsx"
	"github.com/bachata-chat/bachata/libs/testkit"
	eventsv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/events/v1"
)

// scaleEnv turns BenchmarkPresenceScale on; it takes about three minutes,
// so `make bench` (-bench=.) skips it unless asked.
const scaleEnv = "BACHATA_PRESENCE_BENCH"

// scaleConfig is the workload of BenchmarkPresenceScale: what a fleet of
// gateways asks of presence, with the service's own intervals.
type scaleConfig struct {
	gateways, perGateway int
	// workers is how many Connect calls are in flight at once, across
	// both instances (the gateways' concurrent gRPC calls).
	workers int
	// heartbeat, lease and sweep are the gateway's and presence's defaults.
	heartbeat, lease, sweep time.Duration
	// phase is how long the steady and churn phases last.
	phase time.Duration
	// churnPerSec devices disconnect and connect again every second.
	churnPerSec int
}

func (c scaleConfig) devices() int { return c.gateways * c.perGateway }

// scaleFromEnv is 100,000 devices on 20 gateways, 30 s phases and 1%
// churn a second; BACHATA_PRESENCE_BENCH_DEVICES and
// BACHATA_PRESENCE_BENCH_SECONDS scale it down for a quick try.
func scaleFromEnv(b *testing.B) scaleConfig {
	b.Helper()
	c := scaleConfig{
		gateways: 20, perGateway: 5000, workers: 64,
		heartbeat: 3 * time.Second, lease: 9 * time.Second, sweep: time.Second,
		phase: 30 * time.Second,
	}
	if v := os.Getenv(scaleEnv + "_DEVICES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < c.gateways || n > 1_000_000 {
			b.Fatalf("%s_DEVICES=%q: want %d to 1000000", scaleEnv, v, c.gateways)
		}
		c.perGateway = n / c.gateways
	}
	if v := os.Getenv(scaleEnv + "_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 600 {
			b.Fatalf("%s_SECONDS=%q: want 1 to 600", scaleEnv, v)
		}
		c.phase = time.Duration(n) * time.Second
	}
	c.churnPerSec = max(c.devices()/100, 10)
	return c
}

// BenchmarkPresenceScale measures what presence costs Redis and NATS with
// 100,000 devices online: bringing them online, holding them (heartbeats
// and sweeps), churn, and the crash of one gateway. Two Trackers stand for
// two presence instances; each device is its user's only device, so every
// connect and disconnect changes presence (the most events). It runs the
// scenario once whatever b.N is; run it with -benchtime=1x:
//
//	BACHATA_PRESENCE_BENCH=1 go test -run='^$' -bench=BenchmarkPresenceScale -benchtime=1x -timeout=15m ./internal/lease/
func BenchmarkPresenceScale(b *testing.B) {
	if os.Getenv(scaleEnv) == "" {
		b.Skipf("set %s=1 to run (about three minutes)", scaleEnv)
	}
	cfg := scaleFromEnv(b)
	s := newScaleRun(b, cfg)
	defer s.stop()
	s.run()
}

// scaleRun is one run of the scenario.
type scaleRun struct {
	b        *testing.B
	ctx      context.Context
	cfg      scaleConfig
	trackers [2]*Tracker
	meter    *loadMeter
	gateways []*benchGateway
	sweepers sync.WaitGroup
	// stopSweep ends each instance's sweeper; firstDown is set once
	// instance 0 is stopped, and then only instance 1 gets calls.
	stopSweep [2]context.CancelFunc
	firstDown atomic.Bool
	cancel    context.CancelFunc
	// gen is each device's connection generation: a reconnect makes a new
	// connection ID.
	gen []int
	// online and offline count PresenceChanged events by status;
	// lastOffline is when the latest offline event arrived (Unix ns).
	online, offline, lastOffline atomic.Int64
	// downConns counts the connections GatewayDown listed; downAt is when
	// the latest GatewayDown arrived (Unix ns).
	downConns, downAt atomic.Int64
}

func newScaleRun(b *testing.B, cfg scaleConfig) *scaleRun {
	b.Helper()
	r := testkit.StartRedis(b, testkit.RedisOptions{})
	n := testkit.StartNATS(b)
	subjects := natsx.Subjects{Prefix: "bench"}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(b.Context())
	s := &scaleRun{b: b, ctx: ctx, cfg: cfg, cancel: cancel, gen: make([]int, cfg.devices())}
	s.meter = &loadMeter{admin: r.Client(), sent: newSentCounter(), nats: n}
	for i := range s.trackers {
		// Each instance has its own Redis pool and NATS connection, as
		// two processes would.
		rdb := redis.NewClient(&redis.Options{Addr: r.Addr(), PoolSize: cfg.workers})
		rdb.AddHook(s.meter.sent)
		b.Cleanup(func() { _ = rdb.Close() })
		tr, err := New(rdb, n.Conn(), Options{
			Prefix: "bench", Subjects: subjects, DefaultLease: cfg.lease,
			Logger: logger, Registerer: prometheus.NewRegistry(),
		})
		if err != nil {
			b.Fatal(err)
		}
		s.trackers[i] = tr
	}
	sub := n.Conn()
	s.subscribe(sub, subjects.PresenceChangedAll(), func(m *nats.Msg) error {
		var ev eventsv1.PresenceChanged
		if err := proto.Unmarshal(m.Data, &ev); err != nil {
			return err
		}
		if ev.GetOnline() {
			s.online.Add(1)
		} else {
			s.offline.Add(1)
			s.lastOffline.Store(time.Now().UnixNano())
		}
		return nil
	})
	s.subscribe(sub, subjects.GatewayDown(), func(m *nats.Msg) error {
		var ev eventsv1.GatewayDown
		if err := proto.Unmarshal(m.Data, &ev); err != nil {
			return err
		}
		s.downConns.Add(int64(len(ev.GetConnections())))
		s.downAt.Store(time.Now().UnixNano())
		return nil
	})
	if err := sub.Flush(); err != nil {
		b.Fatal(err)
	}
	return s
}

// subscribe counts messages on subject with handle, which must not fail.
func (s *scaleRun) subscribe(nc *nats.Conn, subject string, handle func(*nats.Msg) error) {
	s.b.Helper()
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		if err := handle(m); err != nil {
			s.b.Errorf("decode %s: %v", m.Subject, err)
		}
	})
	if err != nil {
		s.b.Fatal(err)
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		s.b.Fatal(err)
	}
}

// stop ends the gateways and sweepers, waits for them, and fails the run
// if a gateway's heartbeat failed: a lost lease would make the figures
// wrong.
func (s *scaleRun) stop() {
	s.cancel()
	for _, g := range s.gateways {
		<-g.done
		g.mu.Lock()
		if g.err != nil {
			s.b.Errorf("gateway %s: %v", g.id, g.err)
		}
		g.mu.Unlock()
	}
	s.sweepers.Wait()
}

func (s *scaleRun) conn(i int) Connection {
	g := i / s.cfg.perGateway
	return Connection{
		User:    fmt.Sprintf("@u%07d@localhost", i),
		Device:  "phone",
		Gateway: s.gateways[g].id,
		ID:      fmt.Sprintf("c%02d-%07d-%d", g, i, s.gen[i]),
	}
}

// pick is the instance that serves call i: the two in turn, as gRPC round
// robin does, or the one left once instance 0 is stopped.
func (s *scaleRun) pick(i int) *Tracker {
	if s.firstDown.Load() {
		return s.trackers[1]
	}
	return s.trackers[i%len(s.trackers)]
}

func (s *scaleRun) snap() loadSnap {
	s.b.Helper()
	sn, err := s.meter.snap(s.ctx)
	if err != nil {
		s.b.Fatal(err)
	}
	return sn
}

func (s *scaleRun) run() {
	b, cfg := s.b, s.cfg
	report("presence scale: %d devices (one per user) on %d gateways, heartbeat %s, lease %s, sweep %s on 2 instances, %d connects in flight",
		cfg.devices(), cfg.gateways, cfg.heartbeat, cfg.lease, cfg.sweep, cfg.workers)

	// Gateways first: a gateway holds a lease before its first Connect.
	for g := range cfg.gateways {
		gw := &benchGateway{id: fmt.Sprintf("gw-%02d", g), done: make(chan struct{})}
		if err := gw.beat(s.ctx, s.pick(g)); err != nil {
			b.Fatal(err)
		}
		s.gateways = append(s.gateways, gw)
		gctx, cancel := context.WithCancel(s.ctx)
		gw.cancel = cancel
		go gw.run(gctx, cfg.heartbeat, s.pick)
	}
	for i, tr := range s.trackers {
		sctx, cancel := context.WithCancel(s.ctx)
		s.stopSweep[i] = cancel
		s.sweepers.Go(func() {
			if err := tr.RunSweeper(sctx, cfg.sweep); err != nil {
				b.Error(err)
			}
		})
	}
	devices := cfg.devices()
	base := s.snap()

	// The gRPC Connect is OpenSession and then Connect; they run as two
	// passes so the cost and memory of each show.
	err := forEach(s.ctx, devices, cfg.workers, func(i int) error {
		c := s.conn(i)
		_, err := s.pick(i).OpenSession(s.ctx, c.User, c.Device, "")
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	sessions := s.snap()
	err = forEach(s.ctx, devices, cfg.workers, func(i int) error { return s.pick(i).Connect(s.ctx, s.conn(i)) })
	if err != nil {
		b.Fatal(err)
	}
	connected := s.snap()
	s.waitEvents(int64(devices), 0)
	dSess, dConn := delta(base, sessions), delta(sessions, connected)
	logPerOp("open session", dSess, float64(devices))
	logPerOp("connect", dConn, float64(devices))
	both := float64(devices) / (dSess.secs + dConn.secs)
	report("gRPC Connect (session + connect): %.0f/s; %d online events", both, s.online.Load())
	report("memory: %d B per device for presence (devs hash, seen, gateway set), %d B per device for its session key",
		dConn.memory/int64(devices), dSess.memory/int64(devices))
	b.ReportMetric(both, "connects/s")
	b.ReportMetric(float64(dConn.memory+dSess.memory)/float64(devices), "redis-B/device")

	// Steady: only heartbeats and sweeps.
	steadyFrom := s.snap()
	s.pause(cfg.phase)
	steady := delta(steadyFrom, s.snap())
	logRates("steady", steady)
	b.ReportMetric(float64(steady.executedN)/steady.secs, "steady-redis-cmds/s")

	s.churn()
	s.crash(steady)
}

// waitEvents waits until the subscriber has seen online and offline
// events in total, so a phase's events are counted in that phase.
func (s *scaleRun) waitEvents(online, offline int64) {
	s.b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for s.online.Load() < online || s.offline.Load() < offline {
		if time.Now().After(deadline) {
			s.b.Fatalf("events: %d online, %d offline, want %d and %d", s.online.Load(), s.offline.Load(), online, offline)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *scaleRun) pause(d time.Duration) {
	select {
	case <-s.ctx.Done():
		s.b.Fatal(s.ctx.Err())
	case <-time.After(d):
	}
}

// churn disconnects cfg.churnPerSec devices a second and connects each
// again with a new connection ID, as a reconnecting client does (through
// the gRPC Disconnect, then Connect: session, connect), for cfg.phase.
func (s *scaleRun) churn() {
	b, cfg := s.b, s.cfg
	const ticks = 10 // per second
	perTick := cfg.churnPerSec / ticks
	on0, off0 := s.online.Load(), s.offline.Load()
	from := s.snap()
	tick := time.NewTicker(time.Second / ticks)
	defer tick.Stop()
	end := time.Now().Add(cfg.phase)
	next, pairs := 0, 0
	for time.Now().Before(end) {
		select {
		case <-s.ctx.Done():
			b.Fatal(s.ctx.Err())
		case <-tick.C:
		}
		first := next
		err := forEach(s.ctx, perTick, 16, func(k int) error {
			i := (first + k) % cfg.devices()
			tr := s.pick(i + s.gen[i]) // the other instance each time
			if err := tr.Disconnect(s.ctx, s.conn(i)); err != nil {
				return err
			}
			s.gen[i]++
			c := s.conn(i)
			if _, err := tr.OpenSession(s.ctx, c.User, c.Device, ""); err != nil {
				return err
			}
			return tr.Connect(s.ctx, c)
		})
		if err != nil {
			b.Fatal(err)
		}
		next = (first + perTick) % cfg.devices()
		pairs += perTick
	}
	s.waitEvents(on0+int64(pairs), off0+int64(pairs))
	d := delta(from, s.snap())
	report("churn: target %d devices/s reconnecting", cfg.churnPerSec)
	logPerOp("churn (disconnect + session + connect)", d, float64(pairs))
	logRates("churn", d)
	report("churn events: %.0f PresenceChanged/s (%d online, %d offline)",
		float64(s.online.Load()-on0+s.offline.Load()-off0)/d.secs, s.online.Load()-on0, s.offline.Load()-off0)
	b.ReportMetric(float64(d.executedN)/d.secs, "churn-redis-cmds/s")
}

// crash stops presence instance 0 (calls go to instance 1, whose sweeper
// alone is left), then gateway 0's heartbeats, and measures how long until
// the gateway's devices are offline, and the burst of work that takes
// beyond steady.
func (s *scaleRun) crash(steady loadDelta) {
	b, cfg := s.b, s.cfg
	s.firstDown.Store(true)
	s.stopSweep[0]()
	gw := s.gateways[0]
	gw.cancel()
	<-gw.done
	lastBeat := gw.lastStart()
	expiry := lastBeat.Add(cfg.lease)
	off0, downs0 := s.offline.Load(), s.downConns.Load()
	s.pause(time.Until(expiry))
	from := s.snap()
	deadline := expiry.Add(30 * time.Second)
	for s.downConns.Load() < downs0+int64(cfg.perGateway) || s.offline.Load() < off0+int64(cfg.perGateway) {
		if time.Now().After(deadline) {
			b.Fatalf("gateway crash: after 30s past expiry %d offline events and %d connections in GatewayDown, want %d",
				s.offline.Load()-off0, s.downConns.Load()-downs0, cfg.perGateway)
		}
		time.Sleep(5 * time.Millisecond)
	}
	d := delta(from, s.snap())
	downAt := time.Unix(0, s.downAt.Load())
	offAt := time.Unix(0, s.lastOffline.Load())

	// Every device of the gateway reads offline.
	users := make([]string, 0, cfg.perGateway)
	for i := range cfg.perGateway {
		users = append(users, s.conn(i).User)
	}
	for len(users) > 0 {
		n := min(len(users), MaxQueryUsers)
		states, err := s.trackers[1].Query(s.ctx, users[:n])
		if err != nil {
			b.Fatal(err)
		}
		for _, st := range states {
			if st.Online {
				b.Fatalf("gateway crash: %s still online after GatewayDown", st.User)
			}
		}
		users = users[n:]
	}

	report("presence instance 0 stopped, then gateway crash (%d devices): GatewayDown %.2fs after its last heartbeat began (%.2fs after lease expiry); last offline event %.2fs after",
		cfg.perGateway, downAt.Sub(lastBeat).Seconds(), downAt.Sub(expiry).Seconds(), offAt.Sub(lastBeat).Seconds())
	exec := float64(d.executedN) - float64(steady.executedN)/steady.secs*d.secs
	sent := float64(d.sentN) - float64(steady.sentN)/steady.secs*d.secs
	trips := float64(d.trips) - float64(steady.trips)/steady.secs*d.secs
	report("  burst beyond steady, from lease expiry to the last event (%.2fs): %.0f commands executed, %.0f sent in %.0f round trips; NATS %d messages, %d bytes; Redis CPU %.2fs",
		d.secs, exec, sent, trips, d.natsIn, d.natsInByte, d.redisCPU)
	report("  executed: %s", perOp(d.executed, 1))
	b.ReportMetric(downAt.Sub(lastBeat).Seconds(), "crash-to-down-s")
}

// benchGateway heartbeats like a gateway: every interval, to the presence
// instances in turn (gRPC round robin).
type benchGateway struct {
	id     string
	cancel context.CancelFunc
	done   chan struct{}

	mu sync.Mutex
	// last is when the latest successful heartbeat began: its lease runs
	// from about then.
	last time.Time
	// err collects failed heartbeats; any makes the run's figures wrong.
	err error
}

func (g *benchGateway) beat(ctx context.Context, tr *Tracker) error {
	start := time.Now()
	known, err := tr.Heartbeat(ctx, g.id, 0)
	if err != nil {
		return err
	}
	if !known && !g.lastStart().IsZero() {
		return fmt.Errorf("gateway %s lost its lease", g.id)
	}
	g.mu.Lock()
	g.last = start
	g.mu.Unlock()
	return nil
}

func (g *benchGateway) lastStart() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.last
}

func (g *benchGateway) run(ctx context.Context, every time.Duration, pick func(int) *Tracker) {
	defer close(g.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := g.beat(ctx, pick(n)); err != nil && ctx.Err() == nil {
			g.mu.Lock()
			g.err = errors.Join(g.err, err)
			g.mu.Unlock()
		}
	}
}

// forEach calls fn(0..n-1) from workers goroutines and returns the errors.
func forEach(ctx context.Context, n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return ctx.Err()
}
