package ws

import (
	"strconv"

	"github.com/bachata-chat/bachata/libs/protocol"
	"github.com/prometheus/client_golang/prometheus"
)

// Frame kinds used as the "type" label: transport types by number, every
// data message as "data" (data types are chosen by clients, so they would
// make the label unbounded), and frames that could not be decoded.
const (
	kindData    = "data"
	kindError   = "error"
	kindInvalid = "invalid"
	kindBinary  = "binary"
)

// Metrics are the gateway's Prometheus collectors.
type Metrics struct {
	connections prometheus.Gauge
	framesIn    *prometheus.CounterVec
	framesOut   *prometheus.CounterVec
	errors      *prometheus.CounterVec
	closes      *prometheus.CounterVec
	route       *prometheus.HistogramVec
	rpcErrors   *prometheus.CounterVec
	dropped     *prometheus.CounterVec
	rateLimited *prometheus.CounterVec
	// sessionsResumed counts connections that resumed a session key.
	sessionsResumed prometheus.Counter
}

// NewMetrics registers the gateway's collectors with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "bachata", Subsystem: "gateway", Name: "connections",
			Help: "WebSocket connections open on this gateway.",
		}),
		framesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bachata", Subsystem: "gateway", Name: "frames_in_total",
			Help: "Frames received from clients, by type (transport number, data, invalid, binary).",
		}, []string{"type"}),
		framesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bachata", Subsystem: "gateway", Name: "frames_out_total",
			Help: "Frames queued to clients, by type (transport number, data, error).",
		}, []string{"type"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bachata", Subsystem: "gateway", Name: "errors_total",
			Help: "Error replies sent to clients, by errCode.",
		}, []string{"code"}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bachata", Subsystem: "gateway", Name: "closes_total",
			Help: "Closed connections, by the WebSocket close code that ended them.",
		}, []string{"code"}),
		route: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "bachata", Subsystem: "gateway", Name: "route_duration_seconds",
			Help:    "Latency of RouterService.Route calls, by outcome.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"outcome"}),
		rpcErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bachata", Subsystem: "gateway", Name: "rpc_errors_total",
			Help: "Failed gRPC calls to peer services, by method.",
		}, []string{"method"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bachata", Subsystem: "gateway", Name: "deliveries_dropped_total",
			Help: "Deliveries not written, by reason; delivery sends them again on the next attach.",
		}, []string{"reason"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bachata", Subsystem: "gateway", Name: "rate_limited_total",
			Help: "Data messages over their user's rate limit, by what followed (refused, closed).",
		}, []string{"action"}),
		sessionsResumed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "bachata", Subsystem: "gateway", Name: "sessions_resumed_total",
			Help: "Connections that resumed the session key they presented, issued by any gateway.",
		}),
	}
	// Known label values start at zero, so dashboards and alerts see the
	// series before the first failure.
	for _, method := range []string{"router.Route", "delivery.Ack", "delivery.Attach", "delivery.Detach", "presence.Connect", "presence.Disconnect"} {
		m.rpcErrors.WithLabelValues(method)
	}
	for _, reason := range []string{"stale_connection", "bad_message", "bad_receipt", "empty"} {
		m.dropped.WithLabelValues(reason)
	}
	for _, action := range []string{"refused", "closed"} {
		m.rateLimited.WithLabelValues(action)
	}
	reg.MustRegister(m.connections, m.framesIn, m.framesOut, m.errors, m.closes, m.route, m.rpcErrors, m.dropped, m.rateLimited, m.sessionsResumed)
	return m
}

// transportKind is the type label of transport type t (only types of the
// table reach it, so the label stays bounded).
func transportKind(t protocol.TransportType) string { return strconv.Itoa(int(t)) }
