package probe

import (
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const page = `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 42
go_gc_duration_seconds{quantile="0.5"} 0.0001
go_gc_duration_seconds_sum 0.5
go_gc_duration_seconds_count 17
go_memstats_heap_inuse_bytes 1.2345e+07
go_memstats_stack_inuse_bytes 655360
bachata_gateway_closes_total{code="1000"} 3
`

func TestParseMetrics(t *testing.T) {
	t.Parallel()
	m := ParseMetrics([]byte(page))
	require.InDelta(t, 42, m[MetricGoroutines], 0)
	require.InDelta(t, 12345000, m[MetricHeapInuse], 0)
	require.InDelta(t, 17, m[MetricGCCount], 0)
	require.NotContains(t, m, "go_gc_duration_seconds")
	require.NotContains(t, m, "bachata_gateway_closes_total")
}

func TestRead(t *testing.T) {
	t.Parallel()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(page))
	}))
	t.Cleanup(s.Close)
	p := &Probe{PID: os.Getpid(), MetricsURL: s.URL, Client: s.Client()}
	r, err := p.Read(t.Context())
	require.NoError(t, err)
	require.Positive(t, r.RSS)
	require.EqualValues(t, 655360, r.StackInuse)
	require.EqualValues(t, 42, r.Goroutines)

	seen, err := p.WaitGC(t.Context(), 16, 0)
	require.NoError(t, err)
	require.False(t, seen, "a zero wait never waits")
}

func TestParseRSS(t *testing.T) {
	t.Parallel()
	got, err := parseRSS([]byte("Name:\tgateway\nVmRSS:\t   51234 kB\nThreads:\t9\n"))
	require.NoError(t, err)
	require.EqualValues(t, 51234<<10, got)
	_, err = parseRSS([]byte("Name:\tkthreadd\n"))
	require.Error(t, err)
}

func TestParseCPU(t *testing.T) {
	t.Parallel()
	stat := []byte("1234 (a (b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 8 0 100 0 0")
	d, err := parseCPU(stat)
	require.NoError(t, err)
	require.Equal(t, 3250*time.Millisecond, d)
	_, err = parseCPU([]byte("1 (x) S 1"))
	require.Error(t, err)
	self, err := CPU(0)
	require.NoError(t, err)
	require.GreaterOrEqual(t, self, time.Duration(0))
}
