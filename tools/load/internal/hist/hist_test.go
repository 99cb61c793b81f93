package hist

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBucketsCoverEveryValueInOrder(t *testing.T) {
	t.Parallel()
	vals := []int64{0, 1, sub - 1, sub, sub + 1, 2*sub - 1, 2 * sub, 1000, 1 << 20, 1<<20 + 12345, 1<<62 + 7, 1<<63 - 1}
	for _, v := range vals {
		i := bucket(v)
		require.Less(t, i, buckets, "value %d", v)
		require.LessOrEqual(t, lowest(i), v, "value %d bucket %d", v, i)
		require.GreaterOrEqual(t, highest(i), v, "value %d bucket %d", v, i)
	}
	// Adjacent buckets tile the line with no gap or overlap.
	for i := 1; i < buckets; i++ {
		require.Equal(t, highest(i-1)+1, lowest(i), "bucket %d", i)
	}
}

func TestQuantilesWithinPrecision(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	vals := make([]int64, 100_000)
	for i := range vals {
		// Log-uniform from 1 µs to 1 s.
		vals[i] = int64(1e3 * float64(uint64(1)<<r.IntN(20)) * (1 + r.Float64()))
		h.Record(time.Duration(vals[i]))
	}
	slices.Sort(vals)
	for _, tc := range []struct {
		name string
		q    float64
	}{
		{name: "p50", q: 0.5}, {name: "p90", q: 0.9}, {name: "p99", q: 0.99}, {name: "p99.9", q: 0.999},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want := float64(vals[int(tc.q*float64(len(vals)))-1])
			got := float64(h.Quantile(tc.q))
			require.InEpsilon(t, want, got, 2.0/sub)
		})
	}
	require.Equal(t, time.Duration(vals[len(vals)-1]), h.Max())
	require.Equal(t, time.Duration(vals[0]), h.Min())
	require.Equal(t, uint64(len(vals)), h.Count())
}

func TestSmallAndEmpty(t *testing.T) {
	t.Parallel()
	var h Histogram
	require.Equal(t, Summary{}, h.Summary())
	h.Record(-5)
	h.Record(3 * time.Millisecond)
	require.Equal(t, time.Duration(0), h.Quantile(0.5))
	require.Equal(t, 3*time.Millisecond, h.Quantile(1))
	require.Equal(t, 3*time.Millisecond, h.Quantile(0.99), "clamped to the exact max")

	var m Histogram
	m.Record(time.Second)
	m.Merge(&h)
	require.Equal(t, uint64(3), m.Count())
	require.Equal(t, time.Second, m.Max())
	require.Equal(t, time.Duration(0), m.Min())
}
