package natsx

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics count what goes wrong on a service's NATS connection. Publish
// and request failures are counted where they happen, by the service;
// these are the connection's own troubles.
type Metrics struct {
	// errors counts by kind: "async" (slow consumers, permission errors:
	// what the server or client reports outside any call) and
	// "disconnect" (the connection dropped).
	errors      *prometheus.CounterVec
	async       prometheus.Counter
	disconnects prometheus.Counter
	reconnects  prometheus.Counter
}

// NewMetrics registers the NATS connection metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bachata", Subsystem: "nats", Name: "errors_total",
			Help: "NATS connection errors, by kind: async (slow consumer, permissions) and disconnect.",
		}, []string{"kind"}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "bachata", Subsystem: "nats", Name: "reconnects_total",
			Help: "Times the NATS connection was re-established after a loss.",
		}),
	}
	m.async = m.errors.WithLabelValues("async")
	m.disconnects = m.errors.WithLabelValues("disconnect")
	for _, c := range []prometheus.Collector{m.errors, m.reconnects} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register nats metrics: %w", err)
		}
	}
	return m, nil
}

// What count counts.
const (
	kindAsync = iota
	kindDisconnect
	kindReconnect
)

// count adds one of kind when metrics are kept (m not nil).
func (m *Metrics) count(kind int) {
	if m == nil {
		return
	}
	switch kind {
	case kindAsync:
		m.async.Inc()
	case kindDisconnect:
		m.disconnects.Inc()
	case kindReconnect:
		m.reconnects.Inc()
	}
}
