package shard

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bachata-chat/bachata/services/delivery/internal/queue"
)

// The per-shard gauges. Each instance reports the shards it owns, so the
// sum over instances is the deployment's; a shard that moves leaves its
// old owner's report with its worker. The shard label is bounded by the
// configured shard count.
var (
	queuedDesc = prometheus.NewDesc("bachata_delivery_queue_depth",
		"Entries waiting to be pushed in a shard owned here (needs a maximum age; absent without one).", []string{"shard"}, nil)
	inFlightDesc = prometheus.NewDesc("bachata_delivery_in_flight",
		"Entries pushed and not yet acked in a shard owned here.", []string{"shard"}, nil)
	readyDesc = prometheus.NewDesc("bachata_delivery_ready_devices",
		"Devices waiting for their push in a shard owned here.", []string{"shard"}, nil)
	outboxDesc = prometheus.NewDesc("bachata_delivery_outbox",
		"Receipts owed to senders and not yet queued, in a shard owned here.", []string{"shard"}, nil)
	deadDesc = prometheus.NewDesc("bachata_delivery_dead_letter_list_length",
		"Entries in the dead-letter list of a shard owned here.", []string{"shard"}, nil)
)

// sampleStats reads the worker's shard sizes for the gauges, at most every
// StatsEvery: five O(1) commands in one round trip per owned shard.
func (w *worker) sampleStats(ctx context.Context) {
	o := w.owner
	if o.opts.StatsEvery <= 0 || time.Since(w.lastStats) < o.opts.StatsEvery {
		return
	}
	w.lastStats = time.Now()
	st, err := o.store.Stats(ctx, w.shard)
	if err != nil {
		if ctx.Err() == nil {
			o.log.DebugContext(ctx, "shard stats failed", "shard", w.shard, "err", err)
		}
		return
	}
	o.statsMu.Lock()
	o.stats[w.shard] = st
	o.statsMu.Unlock()
}

// forgetStats drops the shard's report when its worker stops.
func (w *worker) forgetStats() {
	o := w.owner
	o.statsMu.Lock()
	delete(o.stats, w.shard)
	o.statsMu.Unlock()
}

// Describe implements prometheus.Collector.
func (o *Owner) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{queuedDesc, inFlightDesc, readyDesc, outboxDesc, deadDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: the last sample of every shard
// this instance owns.
func (o *Owner) Collect(ch chan<- prometheus.Metric) {
	o.statsMu.Lock()
	snapshot := make(map[int]queue.ShardStats, len(o.stats))
	for k, st := range o.stats {
		snapshot[k] = st
	}
	o.statsMu.Unlock()
	for k, st := range snapshot {
		label := strconv.Itoa(k)
		if st.Queued >= 0 {
			ch <- prometheus.MustNewConstMetric(queuedDesc, prometheus.GaugeValue, float64(st.Queued), label)
		}
		ch <- prometheus.MustNewConstMetric(inFlightDesc, prometheus.GaugeValue, float64(st.InFlight), label)
		ch <- prometheus.MustNewConstMetric(readyDesc, prometheus.GaugeValue, float64(st.ReadyDevices), label)
		ch <- prometheus.MustNewConstMetric(outboxDesc, prometheus.GaugeValue, float64(st.Outbox), label)
		ch <- prometheus.MustNewConstMetric(deadDesc, prometheus.GaugeValue, float64(st.DeadLetters), label)
	}
}
