package lease

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Event kinds, the "kind" label of the event counters.
const (
	kindOnline      = "online"
	kindOffline     = "offline"
	kindGatewayDown = "gateway_down"
)

// Operations, the "op" label of the Redis error counter.
const (
	opConnect    = "connect"
	opDisconnect = "disconnect"
	opHeartbeat  = "heartbeat"
	opQuery      = "query"
	opSweep      = "sweep"
	opGauges     = "gauges"
	opSession    = "session"
)

type metrics struct {
	devices       prometheus.Gauge
	gateways      prometheus.Gauge
	events        *prometheus.CounterVec
	publishErrors *prometheus.CounterVec
	sweeps        prometheus.Counter
	expired       prometheus.Counter
	redisErrors   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "bachata", Subsystem: "presence", Name: name, Help: help}
	}
	m := &metrics{
		devices: prometheus.NewGauge(prometheus.GaugeOpts(opts("connected_devices",
			"Connections recorded on live gateway leases, across all instances; refreshed every sweep interval."))),
		gateways: prometheus.NewGauge(prometheus.GaugeOpts(opts("gateways",
			"Gateways holding a lease, across all instances; refreshed every sweep interval."))),
		events: prometheus.NewCounterVec(prometheus.CounterOpts(opts("events_published_total",
			"Events published on NATS by this instance, by kind (online, offline, gateway_down).")), []string{"kind"}),
		publishErrors: prometheus.NewCounterVec(prometheus.CounterOpts(opts("event_publish_errors_total",
			"Events that could not be published, by kind.")), []string{"kind"}),
		sweeps: prometheus.NewCounter(prometheus.CounterOpts(opts("sweeps_total",
			"Sweep passes run by this instance."))),
		expired: prometheus.NewCounter(prometheus.CounterOpts(opts("expired_gateways_total",
			"Gateways whose expired lease this instance swept."))),
		redisErrors: prometheus.NewCounterVec(prometheus.CounterOpts(opts("redis_errors_total",
			"Failed Redis operations, by operation.")), []string{"op"}),
	}
	// Known label values start at zero, so dashboards and alerts see the
	// series before the first event.
	for _, k := range []string{kindOnline, kindOffline, kindGatewayDown} {
		m.events.WithLabelValues(k)
		m.publishErrors.WithLabelValues(k)
	}
	for _, op := range []string{opConnect, opDisconnect, opHeartbeat, opQuery, opSweep, opGauges, opSession} {
		m.redisErrors.WithLabelValues(op)
	}
	for _, col := range []prometheus.Collector{m.devices, m.gateways, m.events, m.publishErrors, m.sweeps, m.expired, m.redisErrors} {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}
