package grpcx

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// serverMetrics count a server's unary calls. Both labels are bounded: the
// methods are the services registered on the server, and codes the gRPC
// set.
type serverMetrics struct {
	handled  *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newServerMetrics() *serverMetrics {
	return &serverMetrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bachata", Subsystem: "grpc", Name: "server_handled_total",
			Help: "gRPC calls served, by full method and status code.",
		}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "bachata", Subsystem: "grpc", Name: "server_handling_seconds",
			Help:    "Time to serve a gRPC call, by full method.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 4, 10),
		}, []string{"method"}),
	}
}

func (m *serverMetrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	m.duration.WithLabelValues(info.FullMethod).Observe(time.Since(start).Seconds())
	m.handled.WithLabelValues(info.FullMethod, status.Code(err).String()).Inc()
	return resp, err
}

// Describe implements prometheus.Collector.
func (s *Server) Describe(ch chan<- *prometheus.Desc) {
	s.metrics.handled.Describe(ch)
	s.metrics.duration.Describe(ch)
}

// Collect implements prometheus.Collector.
func (s *Server) Collect(ch chan<- prometheus.Metric) {
	s.metrics.handled.Collect(ch)
	s.metrics.duration.Collect(ch)
}
