// Package probe reads a gateway's memory from outside the process: its
// resident set from /proc and its Go runtime figures from its Prometheus
// /metrics endpoint.
package probe

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// The metrics a Reading takes, as the Prometheus Go collector names them.
const (
	MetricHeapInuse  = "go_memstats_heap_inuse_bytes"
	MetricStackInuse = "go_memstats_stack_inuse_bytes"
	MetricGoroutines = "go_goroutines"
	MetricGCCount    = "go_gc_duration_seconds_count"
)

// maxMetricsBody bounds a scrape; a gateway's page is tens of KiB.
const maxMetricsBody = 16 << 20

// ErrNoMetric is returned when the page lacks a metric the probe needs.
var ErrNoMetric = errors.New("metric not found")

// Reading is one sample of a process's memory. A field is -1 when it was
// not read.
type Reading struct {
	// RSS is the resident set (VmRSS) in bytes.
	RSS int64
	// HeapInuse, StackInuse and Goroutines are from /metrics.
	HeapInuse, StackInuse, Goroutines int64
	// GCCount is how many GC cycles the process completed.
	GCCount int64
}

// Probe reads one process.
type Probe struct {
	// PID is the process to read /proc/<pid>/status of; 0 skips RSS.
	PID int
	// MetricsURL is its /metrics page; empty skips the runtime figures.
	MetricsURL string
	// Client fetches MetricsURL.
	Client *http.Client
}

// Read takes one Reading.
func (p *Probe) Read(ctx context.Context) (Reading, error) {
	r := Reading{RSS: -1, HeapInuse: -1, StackInuse: -1, Goroutines: -1, GCCount: -1}
	if p.PID > 0 {
		rss, err := RSS(p.PID)
		if err != nil {
			return r, err
		}
		r.RSS = rss
	}
	if p.MetricsURL != "" {
		m, err := p.scrape(ctx)
		if err != nil {
			return r, err
		}
		for name, dst := range map[string]*int64{
			MetricHeapInuse: &r.HeapInuse, MetricStackInuse: &r.StackInuse,
			MetricGoroutines: &r.Goroutines, MetricGCCount: &r.GCCount,
		} {
			v, ok := m[name]
			if !ok {
				return r, fmt.Errorf("%s: %w", name, ErrNoMetric)
			}
			*dst = int64(v)
		}
	}
	return r, nil
}

// WaitGC waits until the process completes a GC cycle after since (a
// GCCount), so the next Reading's heap holds live objects rather than
// garbage, or until max passes. An idle Go process collects at least every
// two minutes (the runtime's forced GC). It reports whether a cycle was
// seen.
func (p *Probe) WaitGC(ctx context.Context, since int64, maxWait time.Duration) (bool, error) {
	if p.MetricsURL == "" || maxWait <= 0 {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		m, err := p.scrape(ctx)
		if err != nil && ctx.Err() == nil {
			return false, err
		}
		if err == nil && int64(m[MetricGCCount]) > since {
			return true, nil
		}
		select {
		case <-ctx.Done():
			return false, nil
		case <-tick.C:
		}
	}
}

func (p *Probe) scrape(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.MetricsURL, nil)
	if err != nil {
		return nil, fmt.Errorf("metrics request: %w", err)
	}
	resp, err := p.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", p.MetricsURL, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: status %s", p.MetricsURL, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetricsBody))
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", p.MetricsURL, err)
	}
	return ParseMetrics(body), nil
}

// ParseMetrics returns the unlabelled samples of a Prometheus text page;
// labelled ones and comments are skipped.
func ParseMetrics(page []byte) map[string]float64 {
	out := make(map[string]float64)
	s := bufio.NewScanner(bytes.NewReader(page))
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 2 || strings.ContainsRune(fields[0], '{') {
			continue
		}
		v, err := strconv.ParseFloat(fields[1], 64)
		if err != nil {
			continue
		}
		out[fields[0]] = v
	}
	return out
}

// RSS is the resident set of process pid in bytes, from the VmRSS line of
// /proc/<pid>/status.
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read rss: %w", err)
	}
	return parseRSS(b)
}

func parseRSS(status []byte) (int64, error) {
	for line := range strings.SplitSeq(string(status), "\n") {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("read rss: odd line %q", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read rss: %w", err)
		}
		return kb << 10, nil
	}
	return 0, errors.New("read rss: no VmRSS line (a kernel thread, or not Linux)")
}

// clockTick is the unit of /proc/<pid>/stat times, USER_HZ: 100 on every
// Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// CPU is the CPU time (user plus system) process pid has used, from
// /proc/<pid>/stat; pid 0 means this process. Its resolution is 10 ms.
func CPU(pid int) (time.Duration, error) {
	path := "/proc/self/stat"
	if pid > 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read cpu: %w", err)
	}
	return parseCPU(b)
}

func parseCPU(stat []byte) (time.Duration, error) {
	// The command name (field 2) may hold spaces and parentheses: the
	// fields after it start after the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("read cpu: no ')' in stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("read cpu: %d fields in stat", len(f)+2)
	}
	var total int64
	for _, s := range f[11:13] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read cpu: %w", err)
		}
		total += v
	}
	return time.Duration(total) * clockTick, nil
}
