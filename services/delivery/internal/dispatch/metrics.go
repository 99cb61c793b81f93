package dispatch

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	enqueued      prometheus.Counter
	acked         prometheus.Counter
	receipts      prometheus.Counter
	pushed        prometheus.Counter
	redelivered   prometheus.Counter
	deadLetters   prometheus.Counter
	undelivered   prometheus.Counter
	delivered     prometheus.Counter
	publishErrors prometheus.Counter
	// ackLatency is the time from a message's last push to the client's
	// ack; lag the time from the router's stamp (just before the enqueue)
	// to the message's first push.
	ackLatency prometheus.Histogram
	lag        prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "bachata", Subsystem: "delivery", Name: name, Help: help})
	}
	m := &metrics{
		enqueued:      c("enqueued_total", "Device queue entries created by Enqueue."),
		acked:         c("acked_total", "Client acks (200) that matched a message in flight."),
		receipts:      c("receipts_total", "Receipts (300) queued for senders."),
		pushed:        c("pushed_total", "Frames published to gateways."),
		redelivered:   c("redelivered_total", "Frames published again: after a reconnect or past the visibility timeout."),
		deadLetters:   c("dead_letters_total", "Entries moved to a dead-letter list (attempts, queue length or age)."),
		undelivered:   c("undelivered_reports_total", "Messages reported undelivered past the configured delay."),
		delivered:     c("delivered_reports_total", "Messages reported undelivered that were acked at last."),
		publishErrors: c("publish_errors_total", "Failed NATS publishes (deliveries stay in flight and come again)."),
		// 1 ms to about a minute: past the visibility timeout an ack is
		// for a redelivery.
		ackLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "bachata", Subsystem: "delivery", Name: "ack_latency_seconds",
			Help:    "Time from a message's push to the recipient device's ack (200).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 17),
		}),
		// 1 ms to over an hour: a device offline for longer lands in +Inf.
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "bachata", Subsystem: "delivery", Name: "lag_seconds",
			Help:    "Time from a message's acceptance (the router's time stamp) to its first push to a device; includes time the device was offline.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 12),
		}),
	}
	for _, col := range []prometheus.Collector{m.enqueued, m.acked, m.receipts, m.pushed, m.redelivered, m.deadLetters, m.undelivered, m.delivered, m.publishErrors, m.ackLatency, m.lag} {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}
