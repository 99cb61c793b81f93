package chain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/bachata-chat/bachata/libs/obs"
	"github.com/bachata-chat/bachata/libs/protocol"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
)

// Chain is an ordered list of routes. Run is safe for concurrent use and
// never blocks on Add or Remove: it works on an immutable snapshot of the
// list, and writers publish a new snapshot. A Chain is also a
// prometheus.Collector for its per-route metrics; register it once. With
// tracing on, every route that runs on a message gets a span, "route
// <name>", a child of the caller's.
type Chain struct {
	mu     sync.Mutex // serializes Add and Remove; Run only loads routes
	routes atomic.Pointer[[]entry]
	m      *metrics
	// tracer is nil when tracing is off.
	tracer trace.Tracer
}

type entry struct {
	route Route
	name  string
	m     *routeMetrics
	// spanName is "route <name>", built once.
	spanName string
}

// New returns a chain of routes in the given order. It fails with
// ErrBadRoute when a route is nil, unnamed or named twice. Its spans go to
// the global tracer provider when tracing is on (obs.TracingEnabled at the
// time of the call).
func New(routes ...Route) (*Chain, error) {
	c := &Chain{m: newMetrics(), tracer: obs.Tracer("github.com/bachata-chat/bachata/services/router/chain")}
	c.routes.Store(&[]entry{})
	for _, r := range routes {
		if err := c.Add(r); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Add appends r to the end of the chain, after every route already in it.
func (c *Chain) Add(r Route) error {
	if r == nil {
		return fmt.Errorf("add route: %w: nil", ErrBadRoute)
	}
	name := r.Name()
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.routes.Load()
	if name == "" || slices.ContainsFunc(old, func(e entry) bool { return e.name == name }) {
		return fmt.Errorf("add route %q: %w: empty or duplicate name", name, ErrBadRoute)
	}
	next := append(slices.Clip(old), entry{route: r, name: name, m: c.m.forRoute(name), spanName: "route " + name})
	c.routes.Store(&next)
	return nil
}

// Remove takes the named route out of the chain, keeping the others in
// order, and reports whether it was there. Messages already running through
// the chain may still reach it, so Remove does not close it (see Close):
// that is the caller's to do once they are done.
func (c *Chain) Remove(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.routes.Load()
	i := slices.IndexFunc(old, func(e entry) bool { return e.name == name })
	if i < 0 {
		return false
	}
	next := slices.Delete(slices.Clone(old), i, i+1)
	c.routes.Store(&next)
	return true
}

// Close closes every route in the chain that implements io.Closer, an
// optional capability checked here (a hook route closes the connection it
// dialed), last route first, and returns their errors joined. Call it once
// the chain runs no more messages: a route may fail after it. Close on a
// nil Chain does nothing, so cleanup code need not check that one was
// built.
func (c *Chain) Close() error {
	if c == nil {
		return nil
	}
	routes := *c.routes.Load()
	rs := make([]Route, len(routes))
	for i, e := range routes {
		rs[i] = e.route
	}
	return closeRoutes(rs)
}

// closeRoutes closes the routes that implement io.Closer, last first.
func closeRoutes(routes []Route) error {
	var errs []error
	for _, r := range slices.Backward(routes) {
		if cl, ok := r.(io.Closer); ok {
			if err := cl.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Names lists the routes in chain order.
func (c *Chain) Names() []string {
	routes := *c.routes.Load()
	names := make([]string, len(routes))
	for i, e := range routes {
		names[i] = e.name
	}
	return names
}

// SignOptional reports whether some route in the chain exempts m from
// signature checks; see SignOptional.
func (c *Chain) SignOptional(m *commonv1.Message) bool {
	for _, e := range *c.routes.Load() {
		if so, ok := e.route.(SignOptional); ok && so.SignOptional(m) {
			return true
		}
	}
	return false
}

// Result is the chain's verdict on one message.
type Result struct {
	// Decision is what the deciding route returned; never Pass.
	Decision Decision
	// Route names the deciding route; empty when no route claimed the
	// message and the chain rejected it as an unknown type.
	Route string

	route Route
}

// Run offers req to each route in order until one decides. A message no
// route claims is rejected with the unknown-type code. An error names the
// route that failed; the message must then not be accepted.
func (c *Chain) Run(ctx context.Context, req *Request) (Result, error) {
	for _, e := range *c.routes.Load() {
		start := time.Now()
		d, err := c.process(ctx, e, req)
		e.m.duration.Observe(time.Since(start).Seconds())
		if err != nil {
			e.m.errors.Inc()
			return Result{}, fmt.Errorf("route %s: %w", e.name, err)
		}
		if d.kind == KindPass {
			continue
		}
		e.m.decisions[d.kind].Inc()
		return Result{Decision: d, Route: e.name, route: e.route}, nil
	}
	c.m.unclaimed.Inc()
	return Result{Decision: Reject(protocol.Errorf(protocol.CodeUnknownType, "type %q", req.Message.GetType()))}, nil
}

// process runs one route on req and checks its decision, in a span of its
// own when tracing is on: the route's calls (a hook, an app backend, the
// membership service) become its children.
func (c *Chain) process(ctx context.Context, e entry, req *Request) (Decision, error) {
	if c.tracer == nil {
		d, err := e.route.Process(ctx, req)
		if err == nil {
			err = d.check()
		}
		return d, err
	}
	ctx, span := c.tracer.Start(ctx, e.spanName, trace.WithAttributes(
		attribute.String("bachata.route", e.name),
		attribute.String("bachata.message.id", req.Message.GetId()),
		attribute.String("bachata.message.type", req.Message.GetType()),
	))
	defer span.End()
	d, err := e.route.Process(ctx, req)
	if err == nil {
		err = d.check()
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(otelcodes.Error, "route failed")
		return d, err
	}
	span.SetAttributes(attribute.String("bachata.decision", d.kind.String()))
	return d, nil
}

// PostProcess calls the deciding route's PostProcess, when it has one, after
// the message of a Deliver decision was queued. Its error is counted and
// returned for the caller to log; it does not undo anything.
func (c *Chain) PostProcess(ctx context.Context, res Result, req *Request, q Queued) error {
	pp, ok := res.route.(PostProcessor)
	if !ok || res.Decision.kind != KindDeliver {
		return nil
	}
	if err := pp.PostProcess(ctx, req, q); err != nil {
		c.m.postErrors.WithLabelValues(res.Route).Inc()
		return fmt.Errorf("post-process %s: %w", res.Route, err)
	}
	return nil
}
