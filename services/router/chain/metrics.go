package chain

import "github.com/prometheus/client_golang/prometheus"

// metrics are the chain's Prometheus collectors; the Chain itself is the
// prometheus.Collector that exposes them.
type metrics struct {
	decisions  *prometheus.CounterVec
	errors     *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	unclaimed  prometheus.Counter
	postErrors *prometheus.CounterVec
	collectors []prometheus.Collector
}

func newMetrics() *metrics {
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bachata", Subsystem: "router", Name: "route_decisions_total",
			Help: "Messages a route claimed, by route and decision (reply, reject, deliver).",
		}, []string{"route", "decision"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bachata", Subsystem: "router", Name: "route_errors_total",
			Help: "Messages a route could not decide on (an error or an invalid decision).",
		}, []string{"route"}),
		// From tens of microseconds (in-memory routes) to seconds (routes
		// that ask a backend over NATS).
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "bachata", Subsystem: "router", Name: "route_duration_seconds",
			Help:    "Time a route took to process a message, passes included.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 4, 9),
		}, []string{"route"}),
		unclaimed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "bachata", Subsystem: "router", Name: "unclaimed_total",
			Help: "Messages no route claimed, rejected as an unknown type.",
		}),
		postErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bachata", Subsystem: "router", Name: "post_process_errors_total",
			Help: "Post-processing failures after a message was queued, by route.",
		}, []string{"route"}),
	}
	m.collectors = []prometheus.Collector{m.decisions, m.errors, m.duration, m.unclaimed, m.postErrors}
	return m
}

// routeMetrics are one route's label children, looked up once when the
// route joins the chain so the hot path does no label hashing.
type routeMetrics struct {
	decisions  [KindSend + 1]prometheus.Counter
	errors     prometheus.Counter
	duration   prometheus.Observer
	postErrors prometheus.Counter
}

func (m *metrics) forRoute(name string) *routeMetrics {
	rm := &routeMetrics{
		errors:     m.errors.WithLabelValues(name),
		duration:   m.duration.WithLabelValues(name),
		postErrors: m.postErrors.WithLabelValues(name),
	}
	for _, k := range []Kind{KindReply, KindReject, KindDeliver, KindSend} {
		rm.decisions[k] = m.decisions.WithLabelValues(name, k.String())
	}
	return rm
}

// Describe implements prometheus.Collector.
func (c *Chain) Describe(ch chan<- *prometheus.Desc) {
	for _, col := range c.m.collectors {
		col.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (c *Chain) Collect(ch chan<- prometheus.Metric) {
	for _, col := range c.m.collectors {
		col.Collect(ch)
	}
}
