package chain

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/bachata-chat/bachata/libs/protocol"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	deliveryv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/delivery/v1"
)

// fakeRoute decides with a function and records the order it was called in.
type fakeRoute struct {
	name    string
	decide  func(*Request) (Decision, error)
	calls   *[]string
	callsMu *sync.Mutex
}

func (f *fakeRoute) Name() string { return f.name }

func (f *fakeRoute) Process(_ context.Context, req *Request) (Decision, error) {
	if f.calls != nil {
		f.callsMu.Lock()
		*f.calls = append(*f.calls, f.name)
		f.callsMu.Unlock()
	}
	if f.decide == nil {
		return Pass(), nil
	}
	return f.decide(req)
}

// postRoute is a fakeRoute with the PostProcessor capability.
type postRoute struct {
	fakeRoute
	mu     sync.Mutex
	queued []Queued
	err    error
}

func (p *postRoute) PostProcess(_ context.Context, _ *Request, q Queued) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.queued = append(p.queued, q)
	return p.err
}

func onType(typ string, d Decision) func(*Request) (Decision, error) {
	return func(r *Request) (Decision, error) {
		if r.Message.GetType() != typ {
			return Pass(), nil
		}
		return d, nil
	}
}

func msg(typ string) *Request {
	return &Request{Message: &commonv1.Message{Id: "m1", Type: typ}}
}

var deliverBob = Deliver(Delivery{Recipients: []*deliveryv1.Recipient{{User: "@bob@localhost"}}, Receipt: true})

func TestRunDecisions(t *testing.T) {
	t.Parallel()
	errBoom := errors.New("boom")
	reply := &commonv1.Message{Id: "m1", Type: "echo"}
	tests := []struct {
		name      string
		routes    func(calls *[]string, mu *sync.Mutex) []Route
		typ       string
		wantErr   error
		wantRoute string
		wantKind  Kind
		wantCalls []string
		check     func(t *testing.T, res Result)
	}{
		{
			name: "first route that does not pass decides, later routes never run",
			routes: func(c *[]string, mu *sync.Mutex) []Route {
				return []Route{
					&fakeRoute{name: "a", calls: c, callsMu: mu},
					&fakeRoute{name: "b", calls: c, callsMu: mu, decide: onType("direct", deliverBob)},
					&fakeRoute{name: "c", calls: c, callsMu: mu, decide: onType("direct", Reply())},
				}
			},
			typ:       "direct",
			wantRoute: "b",
			wantKind:  KindDeliver,
			wantCalls: []string{"a", "b"},
			check: func(t *testing.T, res Result) {
				require.Equal(t, "@bob@localhost", res.Decision.Delivery().Recipients[0].GetUser())
				require.True(t, res.Decision.Delivery().Receipt)
			},
		},
		{
			name: "reply stops the chain with its messages",
			routes: func(c *[]string, mu *sync.Mutex) []Route {
				return []Route{
					&fakeRoute{name: "echo", calls: c, callsMu: mu, decide: onType("echo", Reply(reply))},
					&fakeRoute{name: "after", calls: c, callsMu: mu},
				}
			},
			typ:       "echo",
			wantRoute: "echo",
			wantKind:  KindReply,
			wantCalls: []string{"echo"},
			check: func(t *testing.T, res Result) {
				require.Equal(t, []*commonv1.Message{reply}, res.Decision.Replies())
			},
		},
		{
			name: "reject stops the chain with the error detail",
			routes: func(c *[]string, mu *sync.Mutex) []Route {
				return []Route{
					&fakeRoute{name: "strict", calls: c, callsMu: mu, decide: onType("direct", Reject(&protocol.Error{Code: protocol.CodeInvalidDest, Text: "bad dest", Payload: []byte(`{"dest":"x"}`)}))},
					&fakeRoute{name: "after", calls: c, callsMu: mu},
				}
			},
			typ:       "direct",
			wantRoute: "strict",
			wantKind:  KindReject,
			wantCalls: []string{"strict"},
			check: func(t *testing.T, res Result) {
				require.Equal(t, protocol.CodeInvalidDest, res.Decision.Rejection().Code)
				require.Equal(t, "bad dest", res.Decision.Rejection().ErrText())
				require.JSONEq(t, `{"dest":"x"}`, string(res.Decision.Rejection().Payload))
			},
		},
		{
			name: "no route claims the type: unknown type 4100",
			routes: func(c *[]string, mu *sync.Mutex) []Route {
				return []Route{
					&fakeRoute{name: "a", calls: c, callsMu: mu},
					&fakeRoute{name: "b", calls: c, callsMu: mu, decide: onType("direct", deliverBob)},
				}
			},
			typ:       "no-such-type",
			wantRoute: "",
			wantKind:  KindReject,
			wantCalls: []string{"a", "b"},
			check: func(t *testing.T, res Result) {
				require.Equal(t, protocol.CodeUnknownType, res.Decision.Rejection().Code)
				require.Contains(t, res.Decision.Rejection().ErrText(), "no-such-type")
			},
		},
		{
			name:      "empty chain rejects everything as unknown",
			routes:    func(*[]string, *sync.Mutex) []Route { return nil },
			typ:       "direct",
			wantKind:  KindReject,
			wantCalls: nil,
		},
		{
			name: "route error stops the chain and names the route",
			routes: func(c *[]string, mu *sync.Mutex) []Route {
				return []Route{
					&fakeRoute{name: "flaky", calls: c, callsMu: mu, decide: func(*Request) (Decision, error) {
						return Decision{}, errBoom
					}},
					&fakeRoute{name: "after", calls: c, callsMu: mu},
				}
			},
			typ:       "direct",
			wantErr:   errBoom,
			wantCalls: []string{"flaky"},
		},
		{
			name: "deliver with no recipients is a bad decision",
			routes: func(c *[]string, mu *sync.Mutex) []Route {
				return []Route{&fakeRoute{name: "buggy", calls: c, callsMu: mu, decide: onType("direct", Deliver(Delivery{}))}}
			},
			typ:       "direct",
			wantErr:   ErrBadDecision,
			wantCalls: []string{"buggy"},
		},
		{
			name: "deliver to an empty user is a bad decision",
			routes: func(c *[]string, mu *sync.Mutex) []Route {
				d := Deliver(Delivery{Recipients: []*deliveryv1.Recipient{{User: ""}}})
				return []Route{&fakeRoute{name: "buggy", calls: c, callsMu: mu, decide: onType("direct", d)}}
			},
			typ:       "direct",
			wantErr:   ErrBadDecision,
			wantCalls: []string{"buggy"},
		},
		{
			name: "reject without a code is a bad decision",
			routes: func(c *[]string, mu *sync.Mutex) []Route {
				return []Route{&fakeRoute{name: "buggy", calls: c, callsMu: mu, decide: onType("direct", Reject(&protocol.Error{}))}}
			},
			typ:       "direct",
			wantErr:   ErrBadDecision,
			wantCalls: []string{"buggy"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var (
				calls []string
				mu    sync.Mutex
			)
			c, err := New(tt.routes(&calls, &mu)...)
			require.NoError(t, err)
			res, err := c.Run(t.Context(), msg(tt.typ))
			require.Equal(t, tt.wantCalls, calls)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.ErrorContains(t, err, tt.wantCalls[len(tt.wantCalls)-1])
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantRoute, res.Route)
			require.Equal(t, tt.wantKind, res.Decision.Kind())
			if tt.check != nil {
				tt.check(t, res)
			}
		})
	}
}

func TestZeroDecisionIsPass(t *testing.T) {
	t.Parallel()
	require.Equal(t, KindPass, Decision{}.Kind())
	require.Equal(t, Pass(), Decision{})
}

func TestNewRejectsBadRoutes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		routes []Route
	}{
		{name: "nil route", routes: []Route{nil}},
		{name: "empty name", routes: []Route{&fakeRoute{name: ""}}},
		{name: "duplicate name", routes: []Route{&fakeRoute{name: "a"}, &fakeRoute{name: "a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tt.routes...)
			require.ErrorIs(t, err, ErrBadRoute)
		})
	}
}

func TestAddRemoveKeepOrder(t *testing.T) {
	t.Parallel()
	c, err := New(&fakeRoute{name: "a"}, &fakeRoute{name: "b"}, &fakeRoute{name: "c"})
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b", "c"}, c.Names())

	require.NoError(t, c.Add(&fakeRoute{name: "d"}))
	require.Equal(t, []string{"a", "b", "c", "d"}, c.Names())
	require.ErrorIs(t, c.Add(&fakeRoute{name: "b"}), ErrBadRoute)

	require.True(t, c.Remove("b"))
	require.Equal(t, []string{"a", "c", "d"}, c.Names())
	require.False(t, c.Remove("b"))

	require.NoError(t, c.Add(&fakeRoute{name: "b"}))
	require.Equal(t, []string{"a", "c", "d", "b"}, c.Names())
}

// TestRemoveAffectsRouting: a removed route no longer claims messages, and
// removing does not disturb the snapshot a concurrent Run works on.
func TestRemoveAffectsRouting(t *testing.T) {
	t.Parallel()
	c, err := New(&fakeRoute{name: "direct", decide: onType("direct", deliverBob)})
	require.NoError(t, err)
	res, err := c.Run(t.Context(), msg("direct"))
	require.NoError(t, err)
	require.Equal(t, KindDeliver, res.Decision.Kind())

	require.True(t, c.Remove("direct"))
	res, err = c.Run(t.Context(), msg("direct"))
	require.NoError(t, err)
	require.Equal(t, protocol.CodeUnknownType, res.Decision.Rejection().Code)
}

// TestConcurrentRunAndChange exercises Run against Add and Remove under the
// race detector.
func TestConcurrentRunAndChange(t *testing.T) {
	t.Parallel()
	c, err := New(&fakeRoute{name: "direct", decide: onType("direct", deliverBob)})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				_, err := c.Run(t.Context(), msg("direct"))
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 200 {
			if err := c.Add(&fakeRoute{name: "extra"}); err != nil {
				t.Error(err)
				return
			}
			c.Remove("extra")
		}
	})
	wg.Wait()
}

func TestPostProcess(t *testing.T) {
	t.Parallel()
	errHook := errors.New("hook failed")
	tests := []struct {
		name     string
		typ      string
		hookErr  error
		wantHook bool
		wantErr  error
	}{
		{name: "called after a deliver decision", typ: "direct", wantHook: true},
		{name: "its error is returned and counted", typ: "direct", hookErr: errHook, wantHook: true, wantErr: errHook},
		{name: "not called for a reply", typ: "echo", wantHook: false},
		{name: "not called for an unknown type", typ: "nope", wantHook: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			direct := &postRoute{fakeRoute: fakeRoute{name: "direct", decide: onType("direct", deliverBob)}, err: tt.hookErr}
			echo := &postRoute{fakeRoute: fakeRoute{name: "echo", decide: onType("echo", Reply())}}
			c, err := New(direct, echo)
			require.NoError(t, err)
			req := msg(tt.typ)
			res, err := c.Run(t.Context(), req)
			require.NoError(t, err)
			q := Queued{Delivery: res.Decision.Delivery(), Devices: 3}
			err = c.PostProcess(t.Context(), res, req, q)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.Equal(t, 1.0, testutil.ToFloat64(c.m.postErrors.WithLabelValues("direct")))
			} else {
				require.NoError(t, err)
			}
			if tt.wantHook {
				require.Equal(t, []Queued{q}, direct.queued)
			} else {
				require.Empty(t, direct.queued)
			}
			require.Empty(t, echo.queued, "a reply is never post-processed")
		})
	}
}

// TestPostProcessWithoutCapability: a route without PostProcess is fine.
func TestPostProcessWithoutCapability(t *testing.T) {
	t.Parallel()
	c, err := New(&fakeRoute{name: "direct", decide: onType("direct", deliverBob)})
	require.NoError(t, err)
	req := msg("direct")
	res, err := c.Run(t.Context(), req)
	require.NoError(t, err)
	require.NoError(t, c.PostProcess(t.Context(), res, req, Queued{}))
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	c, err := New(
		&fakeRoute{name: "direct", decide: onType("direct", deliverBob)},
		&fakeRoute{name: "strict", decide: onType("bad", Reject(protocol.NewError(protocol.CodeInvalidDest)))},
		&fakeRoute{name: "flaky", decide: func(r *Request) (Decision, error) {
			if r.Message.GetType() == "flaky" {
				return Decision{}, ErrUnavailable
			}
			return Pass(), nil
		}},
	)
	require.NoError(t, err)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))

	for _, typ := range []string{"direct", "direct", "bad", "flaky", "nope"} {
		_, _ = c.Run(t.Context(), msg(typ))
	}

	require.Equal(t, 2.0, testutil.ToFloat64(c.m.decisions.WithLabelValues("direct", "deliver")))
	require.Equal(t, 1.0, testutil.ToFloat64(c.m.decisions.WithLabelValues("strict", "reject")))
	require.Equal(t, 1.0, testutil.ToFloat64(c.m.errors.WithLabelValues("flaky")))
	require.Equal(t, 0.0, testutil.ToFloat64(c.m.errors.WithLabelValues("direct")))
	require.Equal(t, 1.0, testutil.ToFloat64(c.m.unclaimed))
	// Every Process call is timed, passes included: direct ran 5 times.
	require.Equal(t, uint64(5), sampleCount(t, c.m.duration.WithLabelValues("direct")))
	require.Equal(t, uint64(3), sampleCount(t, c.m.duration.WithLabelValues("strict")))
	n, err := testutil.GatherAndCount(reg, "bachata_router_route_duration_seconds")
	require.NoError(t, err)
	require.Equal(t, 3, n, "one histogram per route")
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP bachata_router_unclaimed_total Messages no route claimed, rejected as an unknown type.
# TYPE bachata_router_unclaimed_total counter
bachata_router_unclaimed_total 1
`), "bachata_router_unclaimed_total"))
}

// sampleCount is how many observations a histogram child holds.
func sampleCount(t *testing.T, o prometheus.Observer) uint64 {
	t.Helper()
	m, ok := o.(prometheus.Metric)
	require.True(t, ok, "observer is not a metric")
	var pb dto.Metric
	require.NoError(t, m.Write(&pb))
	return pb.GetHistogram().GetSampleCount()
}

// TestRunMakesASpanPerRouteThatRan: with a tracer, each route offered the
// message gets a span under the caller's, with its decision; routes after
// the deciding one get none.
func TestRunMakesASpanPerRouteThatRan(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	c, err := New(
		&fakeRoute{name: "first", decide: onType("other", Reply())},
		&fakeRoute{name: "second", decide: onType("text", deliverBob)},
		&fakeRoute{name: "third", decide: onType("text", Reply())},
	)
	require.NoError(t, err)
	c.tracer = tp.Tracer("test")
	ctx, parent := tp.Tracer("test").Start(t.Context(), "Route")
	_, err = c.Run(ctx, msg("text"))
	require.NoError(t, err)
	parent.End()

	var names []string
	for _, s := range rec.Ended() {
		if s.Name() == "Route" {
			continue
		}
		names = append(names, s.Name())
		require.Equal(t, parent.SpanContext().SpanID(), s.Parent().SpanID())
	}
	require.Equal(t, []string{"route first", "route second"}, names)
	for _, kv := range rec.Ended()[1].Attributes() {
		if kv.Key == "bachata.decision" {
			require.Equal(t, "deliver", kv.Value.AsString())
		}
	}
}
