package routing

import (
	"github.com/prometheus/client_golang/prometheus"

	routerv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/router/v1"
)

// metrics count what the service did with each message, on top of the
// chain's per-route metrics.
type metrics struct {
	outcomes        *prometheus.CounterVec
	rejected        *prometheus.CounterVec
	failures        *prometheus.CounterVec
	enqueueDuration prometheus.Histogram
}

func newMetrics() *metrics {
	return &metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bachata", Subsystem: "router", Name: "messages_total",
			Help: "Messages answered, by outcome (queued, duplicate, replied, rejected).",
		}, []string{"outcome"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bachata", Subsystem: "router", Name: "rejected_total",
			Help: "Rejected messages by error code name (\"unknown\" for custom codes).",
		}, []string{"code"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bachata", Subsystem: "router", Name: "failures_total",
			Help: "Messages not accepted because of a server-side failure, by what failed (delivery, route, request).",
		}, []string{"reason"}),
		enqueueDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "bachata", Subsystem: "router", Name: "enqueue_duration_seconds",
			Help:    "Time of DeliveryService.Enqueue calls, failed ones included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12),
		}),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	// Known reasons start at zero, so dashboards and alerts see the series
	// before the first failure.
	for _, reason := range []string{"request", "route", "delivery"} {
		m.failures.WithLabelValues(reason)
	}
	for _, c := range []prometheus.Collector{m.outcomes, m.rejected, m.failures, m.enqueueDuration} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// outcomeLabel is the metric label of an outcome.
func outcomeLabel(o routerv1.Outcome) string {
	switch o {
	case routerv1.Outcome_OUTCOME_QUEUED:
		return "queued"
	case routerv1.Outcome_OUTCOME_DUPLICATE:
		return "duplicate"
	case routerv1.Outcome_OUTCOME_SENT:
		return "sent"
	case routerv1.Outcome_OUTCOME_REPLIED:
		return "replied"
	case routerv1.Outcome_OUTCOME_REJECTED:
		return "rejected"
	default:
		return "unspecified"
	}
}
