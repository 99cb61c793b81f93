package routing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bachata-chat/bachata/libs/protocol"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	deliveryv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/delivery/v1"
	routerv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/router/v1"
	"github.com/bachata-chat/bachata/services/router/chain"
)

const sessionKey = "s3ss10n-k3y"

var alicePhone = &commonv1.DeviceRef{User: "@alice@localhost", Device: "phone"}

func fromAlice(m *commonv1.Message) *routerv1.RouteRequest {
	return &routerv1.RouteRequest{
		Sender: &routerv1.Sender{
			Device:       alicePhone,
			GatewayId:    "gw-1",
			ConnectionId: "c-1",
			SessionKey:   sessionKey,
		},
		Message: m,
	}
}

func directToBob(id string) *commonv1.Message {
	return &commonv1.Message{Id: id, Type: "direct", Dest: "bob", Data: []byte(`{"text":"hi"}`)}
}

// TestDirectIsStampedAndQueued: a client's forged from and time are
// replaced, the message reaches delivery with the right recipients, and the
// answer is QUEUED.
func TestDirectIsStampedAndQueued(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	e := newEnv(t, envOptions{registry: reg})
	m := directToBob("m-1")
	m.From = "@mallory@localhost"
	m.TimeMs = 42

	resp, err := e.router.Route(t.Context(), fromAlice(m))
	require.NoError(t, err)
	require.Equal(t, routerv1.Outcome_OUTCOME_QUEUED, resp.GetOutcome())
	require.Equal(t, "direct", resp.GetRoute())
	require.Equal(t, testNow.UnixMilli(), resp.GetTimeMs())
	require.Nil(t, resp.GetError())

	got := e.delivery.enqueued()
	require.Len(t, got, 1)
	want := &deliveryv1.EnqueueRequest{
		Message: &commonv1.Message{
			Id: "m-1", Type: "direct", Dest: "bob", Data: []byte(`{"text":"hi"}`),
			From: "@alice@localhost", TimeMs: testNow.UnixMilli(),
		},
		Sender: alicePhone,
		Recipients: []*deliveryv1.Recipient{
			{User: "@bob@localhost"},
			{User: "@alice@localhost", ExcludeDevice: "phone", Copy: true},
		},
		Receipt: true,
	}
	require.True(t, proto.Equal(want, got[0]), "enqueued %v", got[0])

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP bachata_router_messages_total Messages answered, by outcome (queued, duplicate, replied, rejected).
# TYPE bachata_router_messages_total counter
bachata_router_messages_total{outcome="queued"} 1
`), "bachata_router_messages_total"))
	n, err := testutil.GatherAndCount(reg, "bachata_router_enqueue_duration_seconds")
	require.NoError(t, err)
	require.Equal(t, 1, n)
}

// TestSystemMessage: a message without a sender device is the system's: its
// from is empty whatever it said, it has no sender and wants no receipt.
func TestSystemMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		sender *routerv1.Sender
	}{
		{name: "no sender", sender: nil},
		{name: "sender without device", sender: &routerv1.Sender{}},
		{name: "empty device", sender: &routerv1.Sender{Device: &commonv1.DeviceRef{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{requireSign: true})
			m := directToBob("sys-1")
			m.From = "@alice@localhost"
			resp, err := e.router.Route(t.Context(), &routerv1.RouteRequest{Sender: tt.sender, Message: m})
			require.NoError(t, err)
			require.Equal(t, routerv1.Outcome_OUTCOME_QUEUED, resp.GetOutcome(), "system messages are never asked for a sign")
			got := e.delivery.enqueued()
			require.Len(t, got, 1)
			require.Empty(t, got[0].GetMessage().GetFrom())
			require.Equal(t, testNow.UnixMilli(), got[0].GetMessage().GetTimeMs())
			require.Nil(t, got[0].GetSender())
			require.False(t, got[0].GetReceipt())
			require.Len(t, got[0].GetRecipients(), 1)
			require.Equal(t, "@bob@localhost", got[0].GetRecipients()[0].GetUser())
		})
	}
}

func TestDeliveryOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		opts        envOptions
		answer      answerFunc
		wantOutcome routerv1.Outcome
		wantCode    codes.Code
	}{
		{
			name: "queued",
			answer: func(context.Context, *deliveryv1.EnqueueRequest) (*deliveryv1.EnqueueResponse, error) {
				return &deliveryv1.EnqueueResponse{Devices: 3}, nil
			},
			wantOutcome: routerv1.Outcome_OUTCOME_QUEUED,
		},
		{
			name: "queued for no device yet is still queued",
			answer: func(context.Context, *deliveryv1.EnqueueRequest) (*deliveryv1.EnqueueResponse, error) {
				return &deliveryv1.EnqueueResponse{}, nil
			},
			wantOutcome: routerv1.Outcome_OUTCOME_QUEUED,
		},
		{
			name: "every recipient had it: duplicate",
			answer: func(context.Context, *deliveryv1.EnqueueRequest) (*deliveryv1.EnqueueResponse, error) {
				return &deliveryv1.EnqueueResponse{Duplicate: true}, nil
			},
			wantOutcome: routerv1.Outcome_OUTCOME_DUPLICATE,
		},
		{
			name: "delivery fails: unavailable",
			answer: func(context.Context, *deliveryv1.EnqueueRequest) (*deliveryv1.EnqueueResponse, error) {
				return nil, status.Error(codes.Internal, "redis: connection refused")
			},
			wantCode: codes.Unavailable,
		},
		{
			name: "delivery too slow: unavailable after the enqueue timeout",
			opts: envOptions{enqueueTimeout: 200 * time.Millisecond},
			answer: func(ctx context.Context, _ *deliveryv1.EnqueueRequest) (*deliveryv1.EnqueueResponse, error) {
				<-ctx.Done() // until the router gives up
				return nil, ctx.Err()
			},
			wantCode: codes.Unavailable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tt.opts)
			e.delivery.setAnswer(tt.answer)
			resp, err := e.router.Route(t.Context(), fromAlice(directToBob("m-1")))
			if tt.wantCode != codes.OK {
				require.Equal(t, tt.wantCode, status.Code(err), "err %v", err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantOutcome, resp.GetOutcome())
			require.Equal(t, "direct", resp.GetRoute())
		})
	}
}

// TestDeliveryDown: nothing listens where delivery should be; the message
// is not accepted and the gateway is told to retry.
func TestDeliveryDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{deliveryDown: true, enqueueTimeout: 2 * time.Second})
	_, err := e.router.Route(t.Context(), fromAlice(directToBob("m-1")))
	require.Equal(t, codes.Unavailable, status.Code(err), "err %v", err)
}

// TestRejected: client mistakes come back as REJECTED with the protocol
// code, never as RPC errors, and nothing is queued.
func TestRejected(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		msg       *commonv1.Message
		wantCode  protocol.Code
		wantRoute string
	}{
		{name: "unknown type", msg: &commonv1.Message{Id: "u1", Type: "no-such-type"}, wantCode: protocol.CodeUnknownType, wantRoute: ""},
		{name: "missing id", msg: &commonv1.Message{Type: "direct", Dest: "bob"}, wantCode: protocol.CodeMissingID},
		{name: "id too long", msg: &commonv1.Message{Id: string(make([]byte, protocol.MaxIDLength+1)), Type: "direct", Dest: "bob"}, wantCode: protocol.CodeInvalidID},
		{name: "missing type", msg: &commonv1.Message{Id: "m1", Dest: "bob"}, wantCode: protocol.CodeInvalidType},
		{name: "data not JSON", msg: &commonv1.Message{Id: "m1", Type: "direct", Dest: "bob", Data: []byte(`{"text":`)}, wantCode: protocol.CodeInvalidField},
		{name: "invalid dest", msg: &commonv1.Message{Id: "m1", Type: "direct", Dest: "Not A User"}, wantCode: protocol.CodeInvalidDest, wantRoute: "direct"},
		{name: "room as direct dest", msg: &commonv1.Message{Id: "m1", Type: "direct", Dest: "!room@localhost"}, wantCode: protocol.CodeInvalidDest, wantRoute: "direct"},
		{name: "dest on another server", msg: &commonv1.Message{Id: "m1", Type: "direct", Dest: "@bob@example.org"}, wantCode: protocol.CodeDestNotFound, wantRoute: "direct"},
	}
	e := newEnv(t, envOptions{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, err := e.router.Route(t.Context(), fromAlice(tt.msg))
			require.NoError(t, err)
			require.Equal(t, routerv1.Outcome_OUTCOME_REJECTED, resp.GetOutcome())
			require.Equal(t, int32(tt.wantCode), resp.GetError().GetCode())
			require.NotEmpty(t, resp.GetError().GetText())
			require.Equal(t, tt.wantRoute, resp.GetRoute())
		})
	}
	t.Cleanup(func() { require.Empty(t, e.delivery.enqueued()) })
}

// TestBadRequests: requests that break the gateway contract are
// InvalidArgument, not a client's error reply.
func TestBadRequests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		req  *routerv1.RouteRequest
	}{
		{name: "no message", req: &routerv1.RouteRequest{Sender: &routerv1.Sender{Device: alicePhone}}},
		{name: "sender user not an entity", req: &routerv1.RouteRequest{
			Sender:  &routerv1.Sender{Device: &commonv1.DeviceRef{User: "alice", Device: "phone"}},
			Message: directToBob("m1"),
		}},
		{name: "sender user is a room", req: &routerv1.RouteRequest{
			Sender:  &routerv1.Sender{Device: &commonv1.DeviceRef{User: "!room@localhost", Device: "phone"}},
			Message: directToBob("m1"),
		}},
		{name: "sender without device id", req: &routerv1.RouteRequest{
			Sender:  &routerv1.Sender{Device: &commonv1.DeviceRef{User: "@alice@localhost"}},
			Message: directToBob("m1"),
		}},
	}
	e := newEnv(t, envOptions{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := e.router.Route(t.Context(), tt.req)
			require.Equal(t, codes.InvalidArgument, status.Code(err), "err %v", err)
		})
	}
}

// TestRouteErrors: a route that cannot decide fails the RPC; only
// chain.ErrUnavailable is retryable.
func TestRouteErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		err      error
		wantCode codes.Code
	}{
		{name: "dependency down", err: fmt.Errorf("redis: %w", chain.ErrUnavailable), wantCode: codes.Unavailable},
		{name: "anything else", err: errors.New("boom"), wantCode: codes.Internal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{routes: []chain.Route{&failingRoute{err: tt.err}}})
			_, err := e.router.Route(t.Context(), fromAlice(directToBob("m1")))
			require.Equal(t, tt.wantCode, status.Code(err), "err %v", err)
			require.Empty(t, e.delivery.enqueued())
		})
	}
}

type failingRoute struct{ err error }

func (*failingRoute) Name() string { return "failing" }

func (f *failingRoute) Process(context.Context, *chain.Request) (chain.Decision, error) {
	return chain.Decision{}, f.err
}

// hookRoute delivers "hooked" messages to bob and records post-processing.
type hookRoute struct {
	mu     sync.Mutex
	queued []chain.Queued
	reqs   []*chain.Request
}

func (*hookRoute) Name() string { return "hooked" }

func (*hookRoute) Process(_ context.Context, req *chain.Request) (chain.Decision, error) {
	if req.Message.GetType() != "hooked" {
		return chain.Pass(), nil
	}
	return chain.Deliver(chain.Delivery{Recipients: []*deliveryv1.Recipient{{User: "@bob@localhost"}}}), nil
}

func (h *hookRoute) PostProcess(_ context.Context, req *chain.Request, q chain.Queued) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.queued = append(h.queued, q)
	h.reqs = append(h.reqs, req)
	return errors.New("hook failed: logged, not fatal")
}

func (h *hookRoute) calls() ([]chain.Queued, []*chain.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]chain.Queued(nil), h.queued...), append([]*chain.Request(nil), h.reqs...)
}

// TestPostProcessAfterEnqueue: the hook runs once the message is queued,
// sees the stamped message, and neither a duplicate nor a failed enqueue
// runs it; its error does not change the outcome.
func TestPostProcessAfterEnqueue(t *testing.T) {
	t.Parallel()
	hook := &hookRoute{}
	e := newEnv(t, envOptions{routes: []chain.Route{hook}})
	m := &commonv1.Message{Id: "h1", Type: "hooked"}

	e.delivery.setAnswer(func(context.Context, *deliveryv1.EnqueueRequest) (*deliveryv1.EnqueueResponse, error) {
		return nil, status.Error(codes.Unavailable, "down")
	})
	_, err := e.router.Route(t.Context(), fromAlice(m))
	require.Equal(t, codes.Unavailable, status.Code(err))
	queued, _ := hook.calls()
	require.Empty(t, queued, "nothing queued, nothing post-processed")

	e.delivery.setAnswer(func(context.Context, *deliveryv1.EnqueueRequest) (*deliveryv1.EnqueueResponse, error) {
		return &deliveryv1.EnqueueResponse{Devices: 2}, nil
	})
	resp, err := e.router.Route(t.Context(), fromAlice(m))
	require.NoError(t, err)
	require.Equal(t, routerv1.Outcome_OUTCOME_QUEUED, resp.GetOutcome())
	queued, reqs := hook.calls()
	require.Len(t, queued, 1)
	require.Equal(t, 2, queued[0].Devices)
	require.Equal(t, "@alice@localhost", reqs[0].Message.GetFrom())

	e.delivery.setAnswer(func(context.Context, *deliveryv1.EnqueueRequest) (*deliveryv1.EnqueueResponse, error) {
		return &deliveryv1.EnqueueResponse{Duplicate: true}, nil
	})
	resp, err = e.router.Route(t.Context(), fromAlice(m))
	require.NoError(t, err)
	require.Equal(t, routerv1.Outcome_OUTCOME_DUPLICATE, resp.GetOutcome())
	queued, _ = hook.calls()
	require.Len(t, queued, 1, "a duplicate is not post-processed again")
}

func TestNewRequiresOptions(t *testing.T) {
	t.Parallel()
	_, err := New(Options{})
	require.ErrorIs(t, err, ErrBadOptions)
}

// TestEphemeralIsPushedNotQueued: a send decision goes to delivery's Push,
// never to Enqueue, and answers OUTCOME_SENT (no 100 for the client).
func TestEphemeralIsPushedNotQueued(t *testing.T) {
	t.Parallel()
	ephemeral, err := chain.NewEphemeral("localhost", "typing")
	require.NoError(t, err)
	e := newEnv(t, envOptions{routes: []chain.Route{ephemeral, chain.NewDirect("localhost")}})
	m := directToBob("t-1")
	m.Type = "typing"
	resp, err := e.router.Route(t.Context(), fromAlice(m))
	require.NoError(t, err)
	require.Equal(t, routerv1.Outcome_OUTCOME_SENT, resp.GetOutcome())
	require.Equal(t, "ephemeral", resp.GetRoute())
	require.Empty(t, e.delivery.enqueued())
	pushes := e.delivery.pushed()
	require.Len(t, pushes, 1)
	require.Equal(t, "@alice@localhost", pushes[0].GetMessage().GetFrom())
	require.Equal(t, "@bob@localhost", pushes[0].GetRecipients()[0].GetUser())
}
