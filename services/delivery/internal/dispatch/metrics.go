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
	publishErrors prometheus.Counter
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
		publishErrors: c("publish_errors_total", "Failed NATS publishes to gateways (messages stay in flight)."),
	}
	for _, col := range []prometheus.Collector{m.enqueued, m.acked, m.receipts, m.pushed, m.publishErrors} {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}
