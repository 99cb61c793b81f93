// Package hist is a log-bucketed latency histogram in the manner of
// HdrHistogram: every power of two is split into 2^SubBits equal buckets,
// so a quantile is reported within 1/2^SubBits (about 1.6%) of the true
// value at every scale, from nanoseconds to hours, in a fixed few
// kilobytes. The exact maximum and minimum are kept besides.
//
// A Histogram is not safe for concurrent use: the load scenarios keep raw
// timestamps while they run and fill histograms afterwards.
package hist

import (
	"math/bits"
	"time"
)

// SubBits sets the precision: 2^SubBits buckets per power of two.
const SubBits = 6

const (
	sub = 1 << SubBits
	// buckets covers every int64: values below sub have a bucket each,
	// then sub buckets for each further power of two.
	buckets = (64-SubBits)*sub + sub
)

// Histogram counts non-negative durations.
type Histogram struct {
	counts   [buckets]uint64
	n        uint64
	sum      float64
	min, max int64
}

// bucket returns the index of v's bucket.
func bucket(v int64) int {
	if v < sub {
		return int(v)
	}
	// e is how far v's top bit is above the sub-bucket bits.
	e := bits.Len64(uint64(v)) - SubBits - 1
	return (e+1)*sub + int(uint64(v)>>e) - sub //nolint:gosec // v>>e < 2*sub by the choice of e
}

// lowest returns the smallest value in bucket i.
func lowest(i int) int64 {
	if i < sub {
		return int64(i)
	}
	e := i/sub - 1
	return int64(uint64(i%sub+sub) << e) //nolint:gosec // at most 2^63-1 for i < buckets
}

// highest returns the largest value in bucket i.
func highest(i int) int64 {
	if i < sub {
		return int64(i)
	}
	e := i/sub - 1
	return lowest(i) + int64(1)<<e - 1
}

// Record counts one duration; negative ones count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	h.counts[bucket(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	h.max = max(h.max, v)
	h.n++
	h.sum += float64(v)
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count is how many durations were recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest duration recorded, exactly; 0 when empty.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Min is the smallest duration recorded, exactly; 0 when empty.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Mean is the average; 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Quantile returns the duration at or below which a fraction q (0..1) of
// the recorded ones lie: the top of the bucket holding that rank, clamped
// to the exact maximum. 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(max(highest(i), h.min), h.max))
		}
	}
	return time.Duration(h.max)
}

// Summary is a histogram's usual figures, for reports.
type Summary struct {
	Count uint64        `json:"count"`
	Min   time.Duration `json:"min_ns"`
	Mean  time.Duration `json:"mean_ns"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	P999  time.Duration `json:"p999_ns"`
	Max   time.Duration `json:"max_ns"`
}

// Summary returns the usual figures.
func (h *Histogram) Summary() Summary {
	return Summary{
		Count: h.n, Min: h.Min(), Mean: h.Mean(),
		P50: h.Quantile(0.50), P90: h.Quantile(0.90), P99: h.Quantile(0.99), P999: h.Quantile(0.999),
		Max: h.Max(),
	}
}
