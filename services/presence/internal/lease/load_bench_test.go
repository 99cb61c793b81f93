package lease

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bachata-chat/bachata/libs/testkit"
)

// This file measures load for the presence benchmarks: what a Redis client
// sends, what the Redis server executed, and what NATS carried. Figures go
// to docs/benchmarks.md, never into assertions.

// sentCounter is a go-redis hook that counts what the clients it is added to
// send: commands by name, and round trips (a pipeline is one).
type sentCounter struct {
	mu     sync.Mutex
	byName map[string]int64
	trips  int64
}

func newSentCounter() *sentCounter { return &sentCounter{byName: make(map[string]int64)} }

func (h *sentCounter) add(cmds ...redis.Cmder) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.trips++
	for _, c := range cmds {
		h.byName[c.Name()]++
	}
}

func (h *sentCounter) snapshot() (map[string]int64, int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.byName), h.trips
}

func (h *sentCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *sentCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.add(cmd)
		return next(ctx, cmd)
	}
}

func (h *sentCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.add(cmds...)
		return next(ctx, cmds)
	}
}

// loadSnap is the counters at one moment.
type loadSnap struct {
	at time.Time
	// executed is INFO commandstats calls by command: every command Redis
	// ran, those run inside scripts included (Redis 7 counts them).
	executed map[string]int64
	// sent and trips are what the presence clients sent (sentCounter).
	sent  map[string]int64
	trips int64
	// usedMemory is INFO memory used_memory, bytes.
	usedMemory int64
	// redisCPU is used_cpu_user + used_cpu_sys of the server, seconds.
	redisCPU float64
	// natsIn and natsInBytes are the messages published to the NATS server.
	natsIn, natsInBytes int64
}

// loadMeter takes loadSnaps. admin is a client of its own, so the
// measuring commands are never counted as sent; INFO is left out of
// executed for the same reason.
type loadMeter struct {
	admin *redis.Client
	sent  *sentCounter
	nats  *testkit.NATS // nil when NATS is not measured
}

func (m *loadMeter) snap(ctx context.Context) (loadSnap, error) {
	s := loadSnap{at: time.Now()}
	s.sent, s.trips = m.sent.snapshot()
	info, err := m.admin.Info(ctx, "commandstats", "memory", "cpu").Result()
	if err != nil {
		return s, fmt.Errorf("redis info: %w", err)
	}
	fields := parseInfo(info)
	s.executed = make(map[string]int64)
	for k, v := range fields {
		name, ok := strings.CutPrefix(k, "cmdstat_")
		if !ok || name == "info" {
			continue
		}
		calls, err := infoCalls(v)
		if err != nil {
			return s, fmt.Errorf("redis info %s: %w", k, err)
		}
		s.executed[name] = calls
	}
	if s.usedMemory, err = strconv.ParseInt(fields["used_memory"], 10, 64); err != nil {
		return s, fmt.Errorf("redis info used_memory: %w", err)
	}
	for _, k := range []string{"used_cpu_user", "used_cpu_sys"} {
		f, err := strconv.ParseFloat(fields[k], 64)
		if err != nil {
			return s, fmt.Errorf("redis info %s: %w", k, err)
		}
		s.redisCPU += f
	}
	if m.nats != nil {
		v, err := m.nats.Server().Varz(nil)
		if err != nil {
			return s, fmt.Errorf("nats varz: %w", err)
		}
		s.natsIn, s.natsInBytes = v.InMsgs, v.InBytes
	}
	return s, nil
}

// parseInfo reads the "key:value" lines of an INFO reply.
func parseInfo(info string) map[string]string {
	out := make(map[string]string)
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if ok && !strings.HasPrefix(k, "#") {
			out[k] = v
		}
	}
	return out
}

// infoCalls reads calls=N out of a commandstats value.
func infoCalls(v string) (int64, error) {
	for f := range strings.SplitSeq(v, ",") {
		if n, ok := strings.CutPrefix(f, "calls="); ok {
			return strconv.ParseInt(n, 10, 64)
		}
	}
	return 0, fmt.Errorf("no calls in %q", v)
}

// loadDelta is what happened between two snaps.
type loadDelta struct {
	secs               float64
	executed, sent     map[string]int64
	executedN, sentN   int64
	trips              int64
	memory             int64
	redisCPU           float64
	natsIn, natsInByte int64
}

func delta(a, b loadSnap) loadDelta {
	d := loadDelta{
		secs:       b.at.Sub(a.at).Seconds(),
		executed:   make(map[string]int64),
		sent:       make(map[string]int64),
		trips:      b.trips - a.trips,
		memory:     b.usedMemory - a.usedMemory,
		redisCPU:   b.redisCPU - a.redisCPU,
		natsIn:     b.natsIn - a.natsIn,
		natsInByte: b.natsInBytes - a.natsInBytes,
	}
	for k, v := range b.executed {
		if n := v - a.executed[k]; n > 0 {
			d.executed[k] = n
			d.executedN += n
		}
	}
	for k, v := range b.sent {
		if n := v - a.sent[k]; n > 0 {
			d.sent[k] = n
			d.sentN += n
		}
	}
	return d
}

// perOp spells counts by command as "name n.nn" per op, largest first.
func perOp(counts map[string]int64, ops float64) string {
	names := slices.Collect(maps.Keys(counts))
	slices.SortFunc(names, func(a, b string) int {
		if c := counts[b] - counts[a]; c != 0 {
			if c > 0 {
				return 1
			}
			return -1
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %.2f", n, float64(counts[n])/ops))
	}
	return strings.Join(parts, ", ")
}

// report prints one line of a benchmark's figures on standard output;
// testing.B would keep only the first ten lines of b.Log output.
func report(format string, args ...any) { fmt.Fprintf(os.Stdout, format+"\n", args...) }

// logPerOp reports a phase's Redis and NATS cost per operation.
func logPerOp(phase string, d loadDelta, ops float64) {
	report("%s: %.0f ops in %.2fs = %.0f ops/s; Redis CPU %.0f%% of a core", phase, ops, d.secs, ops/d.secs, 100*d.redisCPU/d.secs)
	report("  per op: %.2f round trips, %.2f commands sent (%s)", float64(d.trips)/ops, float64(d.sentN)/ops, perOp(d.sent, ops))
	report("  per op: %.2f commands executed by Redis (%s)", float64(d.executedN)/ops, perOp(d.executed, ops))
	if d.natsIn > 0 {
		report("  per op: %.3f NATS messages, %.0f bytes", float64(d.natsIn)/ops, float64(d.natsInByte)/ops)
	}
}

// logRates reports a phase's Redis and NATS load per second.
func logRates(phase string, d loadDelta) {
	report("%s over %.1fs: Redis %.1f round trips/s, %.1f commands/s sent, %.1f commands/s executed; Redis CPU %.1f%% of a core; NATS %.1f msgs/s (%.0f B/s)",
		phase, d.secs, float64(d.trips)/d.secs, float64(d.sentN)/d.secs, float64(d.executedN)/d.secs,
		100*d.redisCPU/d.secs, float64(d.natsIn)/d.secs, float64(d.natsInByte)/d.secs)
	report("  sent/s: %s", perOp(d.sent, d.secs))
	report("  executed/s: %s", perOp(d.executed, d.secs))
}
