package obs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Health is a service's liveness and readiness as the admin endpoints report
// them. A service is live while its process serves; it is ready once its
// dependencies are connected, and stops being ready when it starts draining
// so load balancers move traffic away before connections close.
type Health struct {
	ready atomic.Bool
}

// SetReady marks the service ready (true) or draining/not ready (false).
func (h *Health) SetReady(ready bool) { h.ready.Store(ready) }

// Ready reports whether the service is ready.
func (h *Health) Ready() bool { return h.ready.Load() }

// NewRegistry returns a Prometheus registry with the Go runtime and process
// collectors, so every service exports the same basics.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// AdminMux returns a mux serving /healthz, /readyz and /metrics. Callers may
// add more routes to it.
func AdminMux(h *Health, reg *prometheus.Registry) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !h.Ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	return mux
}

// HTTPServer serves handler on a listener until its context ends, then shuts
// down within the given bound.
type HTTPServer struct {
	lis     net.Listener
	srv     *http.Server
	timeout time.Duration
}

// NewHTTPServer wraps handler for serving on lis.
func NewHTTPServer(lis net.Listener, handler http.Handler, shutdownTimeout time.Duration) *HTTPServer {
	return &HTTPServer{
		lis: lis,
		srv: &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 10 * time.Second,
		},
		timeout: shutdownTimeout,
	}
}

// Addr is the address the server listens on.
func (s *HTTPServer) Addr() net.Addr { return s.lis.Addr() }

// Run serves until ctx ends, then shuts down gracefully.
func (s *HTTPServer) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.lis) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http serve %s: %w", s.lis.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		_ = s.srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http serve %s: %w", s.lis.Addr(), err)
	}
	return nil
}
