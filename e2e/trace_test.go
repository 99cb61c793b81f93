package e2e

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/grpc"

	"github.com/bachata-chat/bachata/libs/localsuite"
)

// span is one exported span, flattened from OTLP.
type span struct {
	service, name     string
	trace, id, parent string
	links             []spanRef
	attrs             map[string]string
	// isRedis marks a span of a Redis command (db.system redis).
	isRedis bool
}

type spanRef struct{ trace, id string }

// collector is an in-process OTLP/gRPC trace receiver: every service of
// the suite exports its spans to it.
type collector struct {
	coltracepb.UnimplementedTraceServiceServer
	addr string

	mu    sync.Mutex
	spans []span
}

func startCollector(t *testing.T) *collector {
	t.Helper()
	lis, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c := &collector{addr: lis.Addr().String()}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, c)
	go func() { _ = srv.Serve(lis) }()
	// Stopped after the suite (cleanups run last first), so the services'
	// final flush still finds it.
	t.Cleanup(srv.Stop)
	return c
}

// Export implements coltracepb.TraceServiceServer.
func (c *collector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	var got []span
	for _, rs := range req.GetResourceSpans() {
		service := stringAttr(rs.GetResource().GetAttributes(), "service.name")
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				sp := span{
					service: service, name: s.GetName(),
					trace: hex.EncodeToString(s.GetTraceId()), id: hex.EncodeToString(s.GetSpanId()),
					parent: hex.EncodeToString(s.GetParentSpanId()), attrs: map[string]string{},
				}
				for _, kv := range s.GetAttributes() {
					sp.attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
					if kv.GetKey() == "db.system" || kv.GetKey() == "db.system.name" {
						sp.isRedis = kv.GetValue().GetStringValue() == "redis"
					}
				}
				for _, l := range s.GetLinks() {
					sp.links = append(sp.links, spanRef{trace: hex.EncodeToString(l.GetTraceId()), id: hex.EncodeToString(l.GetSpanId())})
				}
				got = append(got, sp)
			}
		}
	}
	c.mu.Lock()
	c.spans = append(c.spans, got...)
	c.mu.Unlock()
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func stringAttr(kvs []*commonpb.KeyValue, key string) string {
	for _, kv := range kvs {
		if kv.GetKey() == key {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}

func (c *collector) all() []span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]span(nil), c.spans...)
}

// traceOf returns the spans of trace id.
func traceOf(spans []span, id string) []span {
	var out []span
	for _, s := range spans {
		if s.trace == id {
			out = append(out, s)
		}
	}
	return out
}

// messageTrace is what the test asserts about the trace of one message.
type messageTrace struct {
	root     span
	spans    []span
	byID     map[string]span
	services map[string]bool
}

func (m messageTrace) named(name string, match func(span) bool) []span {
	var out []span
	for _, s := range m.spans {
		if s.name == name && (match == nil || match(s)) {
			out = append(out, s)
		}
	}
	return out
}

// orphans are the spans of the trace, but its root, whose parent is not in
// it.
func (m messageTrace) orphans() []span {
	var out []span
	for _, s := range m.spans {
		if s.id == m.root.id {
			continue
		}
		if _, ok := m.byID[s.parent]; !ok {
			out = append(out, s)
		}
	}
	return out
}

func (m messageTrace) describe() string {
	lines := make([]string, 0, len(m.spans))
	for _, s := range m.spans {
		lines = append(lines, fmt.Sprintf("%s/%s %s parent=%s links=%d", s.service, s.id, s.name, s.parent, len(s.links)))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestTraceOfOneMessageCrossesEveryService runs the four services with
// their traces exported to a collector in the test, sends one direct
// message from alice (gateway 1) to bob (gateway 2), bob acks, alice gets
// her 300, and checks that the spans form one connected trace from the
// gateway's read of the frame through the router and its route, the
// enqueue with its Redis commands, the push over NATS, to bob's gateway's
// write; that the ack joins it, linked to the Ack call's own trace; and
// that the 300 written to alice is in it too.
func TestTraceOfOneMessageCrossesEveryService(t *testing.T) {
	t.Parallel()
	col := startCollector(t)
	e := startSuiteWith(t, func(c *localsuite.Config) {
		c.Gateways = 2
		c.Env = append(c.Env,
			"OTEL_EXPORTER_OTLP_ENDPOINT=http://"+col.addr,
			"OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
			"OTEL_TRACES_SAMPLER=always_on",
			"OTEL_BSP_SCHEDULE_DELAY=50",
		)
	})
	alice := dial(t, e.gw(0), token(t, secret, "alice"), "phone")
	bob := dial(t, e.gw(1), token(t, secret, "bob"), "laptop")

	const id = "m-traced"
	alice.direct(id, "bob", "follow me")
	alice.expectTransport(100, id)
	got := bob.expectMessage(id)
	require.NotContains(t, got.raw, "trace", "trace context never reaches a client")
	bob.ack(id)
	alice.expectTransport(300, id)

	forMessage := func(s span) bool { return s.attrs["bachata.message.id"] == id }
	var mt messageTrace
	complete := func() (bool, string) {
		spans := col.all()
		var roots []span
		for _, s := range spans {
			if s.name == "ws.receive direct" && forMessage(s) {
				roots = append(roots, s)
			}
		}
		if len(roots) != 1 {
			return false, fmt.Sprintf("%d ws.receive spans for the message", len(roots))
		}
		mt = messageTrace{root: roots[0], spans: traceOf(spans, roots[0].trace), byID: map[string]span{}, services: map[string]bool{}}
		for _, s := range mt.spans {
			mt.byID[s.id] = s
			mt.services[s.service] = true
		}
		switch {
		case !mt.services["gateway"] || !mt.services["router"] || !mt.services["delivery"]:
			return false, fmt.Sprintf("services so far: %v", mt.services)
		case len(mt.named("ws.write", func(s span) bool { return forMessage(s) && s.attrs["bachata.gateway"] == "gw-2" })) != 1:
			return false, "no ws.write at bob's gateway yet"
		case len(mt.named("ws.write", func(s span) bool { return forMessage(s) && s.attrs["bachata.gateway"] == "gw-1" })) != 1:
			return false, "no ws.write of the 300 at alice's gateway yet"
		case len(mt.named("delivery.ack", forMessage)) != 1:
			return false, "no delivery.ack yet"
		case len(mt.orphans()) > 0:
			return false, fmt.Sprintf("%d spans whose parent is not exported yet", len(mt.orphans()))
		}
		return true, ""
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, why := complete()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the message's trace is not complete: %s\n%s", why, mt.describe())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("the message's trace:\n%s", mt.describe())

	require.Equal(t, "gateway", mt.root.service)
	require.Empty(t, mt.root.parent, "ws.receive is the root")
	require.Equal(t, "@alice@localhost", mt.root.attrs["bachata.user"])
	require.Equal(t, "phone", mt.root.attrs["bachata.device"])
	require.NotContains(t, mt.root.attrs, "data", "no message bodies in spans")

	// The router's route ran in the trace, under its gRPC server span.
	require.NotEmpty(t, mt.named("route direct", func(s span) bool { return s.service == "router" }))
	// The enqueue's Redis commands, in delivery, are in it.
	var redisSpans int
	for _, s := range mt.spans {
		if s.service == "delivery" && s.isRedis {
			redisSpans++
		}
	}
	require.Positive(t, redisSpans, "Redis spans of the enqueue")
	// Pushed over NATS: the publish's header context reached bob's gateway.
	require.NotEmpty(t, mt.named("delivery.push", forMessage))
	require.NotEmpty(t, mt.named("nats.publish", func(s span) bool { return s.service == "delivery" }))
	require.NotEmpty(t, mt.named("nats.receive", func(s span) bool { return s.service == "gateway" }))

	// The ack joined the message's trace and links to the Ack call, whose
	// own trace started at bob's gateway.
	ack := mt.named("delivery.ack", forMessage)[0]
	require.Equal(t, "delivery", ack.service)
	require.Len(t, ack.links, 1)
	call := ack.links[0]
	require.NotEqual(t, mt.root.trace, call.trace, "the Ack call (a batch of acks) has a trace of its own")
	var ackCall []span
	deadline = time.Now().Add(10 * time.Second)
	for len(ackCall) == 0 && time.Now().Before(deadline) {
		ackCall = traceOf(col.all(), call.trace)
		time.Sleep(50 * time.Millisecond)
	}
	found := false
	for _, s := range ackCall {
		found = found || s.id == call.id && s.service == "delivery"
	}
	require.True(t, found, "the link names the Ack call's span in delivery")

	// The 300 to alice descends from the ack.
	w300 := mt.named("ws.write", func(s span) bool { return forMessage(s) && s.attrs["bachata.gateway"] == "gw-1" })[0]
	descends := false
	for s := w300; s.parent != ""; s = mt.byID[s.parent] {
		if s.parent == ack.id {
			descends = true
			break
		}
	}
	require.True(t, descends, "the 300's write descends from the ack")
}
