// Package grpcx builds the gRPC servers and clients every service uses, with
// one ordered interceptor list, the standard health service and bounded
// graceful stop.
package grpcx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/bachata-chat/bachata/libs/obs"
)

// Server is a gRPC server with its health service. It is also a
// prometheus.Collector of its calls by method and status code; register it
// on the service's registry.
type Server struct {
	*grpc.Server
	lis         net.Listener
	health      *health.Server
	stopTimeout time.Duration
	metrics     *serverMetrics
}

// MaxConnectionAge is how long a client connection may live before the
// server asks the client to reconnect (a GOAWAY; calls in flight get
// MaxConnectionAgeGrace to finish). Clients balance over the addresses of
// a name ("dns:///…") and look the name up again only when a connection
// ends, so without an age a service scaled out would get no calls from
// clients already running.
const (
	MaxConnectionAge      = 2 * time.Minute
	MaxConnectionAgeGrace = 30 * time.Second
)

// NewServer returns a server for lis whose interceptors, in order, recover
// panics into codes.Internal, count calls and log failed ones, and whose
// connections live at most MaxConnectionAge. When tracing is on
// (obs.TracingEnabled) an OpenTelemetry stats handler makes a server span
// of every call but health checks, continuing the caller's trace from the
// request metadata. GracefulStop waits at most stopTimeout before cutting
// the remaining calls.
func NewServer(lis net.Listener, logger *slog.Logger, stopTimeout time.Duration, opts ...grpc.ServerOption) *Server {
	m := newServerMetrics()
	base := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(unaryInterceptors(logger, m)...),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionAge:      MaxConnectionAge,
			MaxConnectionAgeGrace: MaxConnectionAgeGrace,
		}),
	}
	if obs.TracingEnabled() {
		base = append(base, grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithFilter(filters.Not(filters.HealthCheck())))))
	}
	opts = append(base, opts...)
	s := &Server{
		Server:      grpc.NewServer(opts...),
		lis:         lis,
		health:      health.NewServer(),
		stopTimeout: stopTimeout,
		metrics:     m,
	}
	healthpb.RegisterHealthServer(s.Server, s.health)
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	return s
}

// unaryInterceptors is the one ordered list of unary interceptors: recovery
// first so a panic anywhere below becomes a status, then metrics (which
// see the status a panic became), then logging.
func unaryInterceptors(logger *slog.Logger, m *serverMetrics) []grpc.UnaryServerInterceptor {
	return []grpc.UnaryServerInterceptor{
		recoverUnary(logger),
		m.unary,
		logUnary(logger),
	}
}

func recoverUnary(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				logger.ErrorContext(ctx, "grpc handler panicked", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
				err = status.Error(codes.Internal, "internal error")
			}
		}()
		return handler(ctx, req)
	}
}

func logUnary(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if err != nil {
			code := status.Code(err)
			level := slog.LevelWarn
			if code == codes.Internal || code == codes.Unknown || code == codes.DataLoss {
				level = slog.LevelError
			}
			logger.Log(ctx, level, "grpc call failed", "method", info.FullMethod, "code", code.String(), "err", err)
		}
		return resp, err
	}
}

// SetServing flips the health status that clients and probes see.
func (s *Server) SetServing(serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus("", st)
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.lis.Addr() }

// Run serves until ctx ends, then reports NOT_SERVING and stops gracefully,
// forcing the stop after the configured bound.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(s.lis) }()
	s.SetServing(true)
	select {
	case err := <-errc:
		return fmt.Errorf("grpc serve %s: %w", s.lis.Addr(), err)
	case <-ctx.Done():
	}
	s.SetServing(false)
	done := make(chan struct{})
	go func() { s.GracefulStop(); close(done) }()
	timer := time.NewTimer(s.stopTimeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		s.Stop()
		<-done
	}
	// A stop that lands before Serve began makes Serve report
	// ErrServerStopped; that is the shutdown asked for, not a failure.
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("grpc serve %s: %w", s.lis.Addr(), err)
	}
	return nil
}
