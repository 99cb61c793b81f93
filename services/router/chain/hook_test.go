package chain

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bachata-chat/bachata/libs/grpcx"
	"github.com/bachata-chat/bachata/libs/protocol"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	deliveryv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/delivery/v1"
	hookv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/hook/v1"
)

// A timeout no call on loopback reaches, even under -race on a busy
// machine, for tests that are not about the deadline.
const roomyTimeout = 10 * time.Second

// hookServer is a RouteHookService on a loopback port answering with its
// answer function and counting calls.
type hookServer struct {
	hookv1.UnimplementedRouteHookServiceServer
	answer func(context.Context, *hookv1.ProcessRequest) (*hookv1.ProcessResponse, error)
	calls  atomic.Int64

	mu   sync.Mutex
	last *hookv1.ProcessRequest
}

func (s *hookServer) Process(ctx context.Context, req *hookv1.ProcessRequest) (*hookv1.ProcessResponse, error) {
	s.calls.Add(1)
	s.mu.Lock()
	s.last = req
	s.mu.Unlock()
	return s.answer(ctx, req)
}

// lastRequest is the last request the server received.
func (s *hookServer) lastRequest() *hookv1.ProcessRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// startHookServer serves answer on 127.0.0.1 and returns the server, its
// address, and a stop function that is also run at cleanup (calling it
// again does nothing). With a nil answer the service is not registered,
// so every call is Unimplemented.
func startHookServer(t *testing.T, answer func(context.Context, *hookv1.ProcessRequest) (*hookv1.ProcessResponse, error)) (*hookServer, string, func()) {
	t.Helper()
	var lc net.ListenConfig
	lis, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	hs := &hookServer{answer: answer}
	srv := grpc.NewServer()
	if answer != nil {
		hookv1.RegisterRouteHookServiceServer(srv, hs)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	stop := sync.OnceFunc(func() {
		srv.Stop()
		if err := <-served; err != nil {
			t.Errorf("hook server: %v", err)
		}
	})
	t.Cleanup(stop)
	return hs, lis.Addr().String(), stop
}

// answerWith answers every call with resp.
func answerWith(resp *hookv1.ProcessResponse) func(context.Context, *hookv1.ProcessRequest) (*hookv1.ProcessResponse, error) {
	return func(context.Context, *hookv1.ProcessRequest) (*hookv1.ProcessResponse, error) { return resp, nil }
}

// dialHook returns a client of the hook at addr, closed at cleanup.
func dialHook(t *testing.T, addr string) hookv1.RouteHookServiceClient {
	t.Helper()
	cc, err := grpcx.Dial(addr)
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := cc.Close(); err != nil {
			t.Errorf("close hook client: %v", err)
		}
	})
	return hookv1.NewRouteHookServiceClient(cc)
}

func newTestHook(t *testing.T, client hookv1.RouteHookServiceClient, opts ...HookOption) *Hook {
	t.Helper()
	h, err := NewHook("polls", client, append([]HookOption{WithHookTimeout(roomyTimeout)}, opts...)...)
	require.NoError(t, err)
	return h
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	var lc net.ListenConfig
	lis, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	return addr
}

// pollReq is a "poll" message from Alice's laptop, stamped as the router
// does.
func pollReq(id string) *Request {
	return &Request{
		Message: &commonv1.Message{
			Id: id, Type: "poll", TimeMs: 1700000000300, From: aliceLaptop.GetUser(),
			Dest: "!lunch@localhost", Data: []byte(`{"q":"where?"}`),
		},
		Sender:     aliceLaptop,
		SessionKey: "secret",
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestHookDecisions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		answer *hookv1.ProcessResponse
		check  func(t *testing.T, d Decision)
	}{
		{
			name:   "pass",
			answer: &hookv1.ProcessResponse{Decision: &hookv1.ProcessResponse_Pass{Pass: &hookv1.Pass{}}},
			check:  func(t *testing.T, d Decision) { require.Equal(t, KindPass, d.Kind()) },
		},
		{
			name: "reply",
			answer: &hookv1.ProcessResponse{Decision: &hookv1.ProcessResponse_Reply{Reply: &hookv1.Reply{Messages: []*commonv1.Message{
				{Id: "p-1", Type: "poll", TimeMs: 1700000000300, Dest: "@alice@localhost", Data: []byte(`{"id":7}`)},
				{Id: "p-1", Type: "poll:results", Data: []byte(`[]`)},
			}}}},
			check: func(t *testing.T, d Decision) {
				require.Equal(t, KindReply, d.Kind())
				require.Len(t, d.Replies(), 2)
				require.True(t, proto.Equal(&commonv1.Message{Id: "p-1", Type: "poll", TimeMs: 1700000000300, Dest: "@alice@localhost", Data: []byte(`{"id":7}`)}, d.Replies()[0]))
				require.Equal(t, "poll:results", d.Replies()[1].GetType())
			},
		},
		{
			name:   "reply with no messages consumes the message",
			answer: &hookv1.ProcessResponse{Decision: &hookv1.ProcessResponse_Reply{Reply: &hookv1.Reply{}}},
			check: func(t *testing.T, d Decision) {
				require.Equal(t, KindReply, d.Kind())
				require.Empty(t, d.Replies())
			},
		},
		{
			name: "reject with a custom code",
			answer: &hookv1.ProcessResponse{Decision: &hookv1.ProcessResponse_Reject{Reject: &hookv1.Reject{
				Code: 10000, Text: "polls are closed", Payload: []byte(` {"reopens": "monday"}`),
			}}},
			check: func(t *testing.T, d Decision) {
				require.Equal(t, KindReject, d.Kind())
				e := d.Rejection()
				require.Equal(t, protocol.Code(10000), e.Code)
				require.Equal(t, "polls are closed", e.ErrText())
				require.JSONEq(t, `{"reopens":"monday"}`, string(e.Payload))
				require.False(t, e.Retryable())
			},
		},
		{
			name:   "reject with the last custom code",
			answer: &hookv1.ProcessResponse{Decision: &hookv1.ProcessResponse_Reject{Reject: &hookv1.Reject{Code: 19999}}},
			check: func(t *testing.T, d Decision) {
				require.Equal(t, KindReject, d.Kind())
				require.Equal(t, protocol.Code(19999), d.Rejection().Code)
			},
		},
		{
			name:   "reject with a code of the table and its default text",
			answer: &hookv1.ProcessResponse{Decision: &hookv1.ProcessResponse_Reject{Reject: &hookv1.Reject{Code: int32(protocol.CodeForbidden)}}},
			check: func(t *testing.T, d Decision) {
				require.Equal(t, KindReject, d.Kind())
				require.Equal(t, protocol.CodeForbidden, d.Rejection().Code)
				require.Equal(t, protocol.CodeForbidden.Text(), d.Rejection().ErrText())
				require.Empty(t, d.Rejection().Payload)
			},
		},
		{
			name: "deliver to users with a receipt",
			answer: &hookv1.ProcessResponse{Decision: &hookv1.ProcessResponse_Deliver{Deliver: &hookv1.Deliver{
				Recipients: []*deliveryv1.Recipient{
					{User: "@bob@localhost"},
					{User: "@alice@localhost", ExcludeDevice: "laptop", Copy: true},
				},
				Receipt: true,
			}}},
			check: func(t *testing.T, d Decision) {
				require.Equal(t, KindDeliver, d.Kind())
				del := d.Delivery()
				require.True(t, del.Receipt)
				require.Len(t, del.Recipients, 2)
				require.True(t, proto.Equal(&deliveryv1.Recipient{User: "@bob@localhost"}, del.Recipients[0]))
				require.True(t, proto.Equal(&deliveryv1.Recipient{User: "@alice@localhost", ExcludeDevice: "laptop", Copy: true}, del.Recipients[1]))
			},
		},
		{
			name: "deliver to a room",
			answer: &hookv1.ProcessResponse{Decision: &hookv1.ProcessResponse_Deliver{Deliver: &hookv1.Deliver{
				Recipients: []*deliveryv1.Recipient{{Room: "!lunch@localhost", ExcludeDevice: "laptop"}},
			}}},
			check: func(t *testing.T, d Decision) {
				require.Equal(t, KindDeliver, d.Kind())
				require.False(t, d.Delivery().Receipt)
				require.Equal(t, "!lunch@localhost", d.Delivery().Recipients[0].GetRoom())
				require.Equal(t, "laptop", d.Delivery().Recipients[0].GetExcludeDevice())
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hs, addr, _ := startHookServer(t, answerWith(tt.answer))
			h := newTestHook(t, dialHook(t, addr))
			req := pollReq("m-1")
			d, err := h.Process(t.Context(), req)
			require.NoError(t, err)
			require.NoError(t, d.check(), "the chain accepts the decision")
			tt.check(t, d)

			got := hs.lastRequest()
			require.True(t, proto.Equal(req.Message, got.GetMessage()), "message: %v", got.GetMessage())
			require.True(t, proto.Equal(aliceLaptop, got.GetSender()), "sender: %v", got.GetSender())
			require.Equal(t, "polls", got.GetRoute())
			require.Equal(t, int64(1), hs.calls.Load())
		})
	}
}

func TestHookSystemMessageHasNoSender(t *testing.T) {
	t.Parallel()
	hs, addr, _ := startHookServer(t, answerWith(&hookv1.ProcessResponse{Decision: &hookv1.ProcessResponse_Pass{Pass: &hookv1.Pass{}}}))
	h := newTestHook(t, dialHook(t, addr))
	req := pollReq("m-2")
	req.Sender, req.SessionKey, req.Message.From = nil, "", ""
	d, err := h.Process(t.Context(), req)
	require.NoError(t, err)
	require.Equal(t, KindPass, d.Kind())
	got := hs.lastRequest()
	require.Nil(t, got.GetSender(), "unset, not an empty DeviceRef")
	require.Empty(t, got.GetMessage().GetFrom())
}

// TestHookInChain runs a hook between built-in routes: what it passes goes
// on, what it decides is the hook's by name.
func TestHookInChain(t *testing.T) {
	t.Parallel()
	hs, addr, _ := startHookServer(t, func(_ context.Context, req *hookv1.ProcessRequest) (*hookv1.ProcessResponse, error) {
		if req.GetMessage().GetDest() == "bob" {
			return &hookv1.ProcessResponse{Decision: &hookv1.ProcessResponse_Pass{Pass: &hookv1.Pass{}}}, nil
		}
		return &hookv1.ProcessResponse{Decision: &hookv1.ProcessResponse_Reject{Reject: &hookv1.Reject{Code: 10001, Text: "only to bob"}}}, nil
	})
	h := newTestHook(t, dialHook(t, addr), WithHookTypes("direct"))
	c, err := New(NewHandshake(), h, NewDirect("localhost"))
	require.NoError(t, err)

	req := appReq("m-3", `{"text":"hi"}`)
	req.Message.Type, req.Message.Dest = "direct", "bob"
	res, err := c.Run(t.Context(), req)
	require.NoError(t, err)
	require.Equal(t, "direct", res.Route)
	require.Equal(t, KindDeliver, res.Decision.Kind())

	req.Message.Dest = "carol"
	res, err = c.Run(t.Context(), req)
	require.NoError(t, err)
	require.Equal(t, "polls", res.Route)
	require.Equal(t, protocol.Code(10001), res.Decision.Rejection().Code)
	require.Equal(t, int64(2), hs.calls.Load())
}

func TestHookTypes(t *testing.T) {
	t.Parallel()
	hs, addr, _ := startHookServer(t, answerWith(&hookv1.ProcessResponse{Decision: &hookv1.ProcessResponse_Reply{Reply: &hookv1.Reply{}}}))
	client := dialHook(t, addr)

	h := newTestHook(t, client, WithHookTypes("poll", "vote"))
	require.Equal(t, []string{"poll", "vote"}, h.Types())
	for _, typ := range []string{"direct", "group", "Poll", "poll:error", "polls", "handshake"} {
		req := pollReq("m-4")
		req.Message.Type = typ
		d, err := h.Process(t.Context(), req)
		require.NoError(t, err)
		require.Equal(t, KindPass, d.Kind(), "type %q", typ)
	}
	require.Zero(t, hs.calls.Load(), "types not offered make no call")

	for _, typ := range []string{"poll", "vote"} {
		req := pollReq("m-5")
		req.Message.Type = typ
		d, err := h.Process(t.Context(), req)
		require.NoError(t, err)
		require.Equal(t, KindReply, d.Kind(), "type %q", typ)
	}
	require.Equal(t, int64(2), hs.calls.Load())

	// No types: every type is offered.
	all := newTestHook(t, client)
	require.Empty(t, all.Types())
	for _, typ := range []string{"direct", "anything"} {
		req := pollReq("m-6")
		req.Message.Type = typ
		d, err := all.Process(t.Context(), req)
		require.NoError(t, err)
		require.Equal(t, KindReply, d.Kind(), "type %q", typ)
	}
	require.Equal(t, int64(4), hs.calls.Load())
}

// requireHookFailure checks what Process returned for a failing hook
// under policy: open passes, closed is an error wrapping ErrUnavailable
// (and every error of also).
func requireHookFailure(t *testing.T, policy HookPolicy, d Decision, err error, also ...error) {
	t.Helper()
	if policy == HookFailOpen {
		require.NoError(t, err)
		require.Equal(t, KindPass, d.Kind())
		return
	}
	require.ErrorIs(t, err, ErrUnavailable)
	for _, e := range also {
		require.ErrorIs(t, err, e)
	}
	require.Contains(t, err.Error(), "hook polls")
}

func TestHookSlowBeyondTheDeadline(t *testing.T) {
	t.Parallel()
	for _, policy := range []HookPolicy{HookFailOpen, HookFailClosed} {
		t.Run(policy.String(), func(t *testing.T) {
			t.Parallel()
			// Answers only once the router gave up: the deadline reaches the
			// server with the call.
			hs, addr, _ := startHookServer(t, func(ctx context.Context, _ *hookv1.ProcessRequest) (*hookv1.ProcessResponse, error) {
				<-ctx.Done()
				return nil, status.FromContextError(ctx.Err()).Err()
			})
			var logs syncBuffer
			h := newTestHook(t, dialHook(t, addr), WithHookTimeout(50*time.Millisecond), WithHookPolicy(policy),
				WithHookLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			require.Equal(t, 50*time.Millisecond, h.Timeout())
			require.Equal(t, policy, h.Policy())

			d, err := h.Process(t.Context(), pollReq("m-7"))
			requireHookFailure(t, policy, d, err)
			if err != nil {
				require.Equal(t, codes.DeadlineExceeded, status.Code(err))
			}
			require.Equal(t, int64(1), hs.calls.Load())
			require.Contains(t, logs.String(), "route hook failed")
			require.Contains(t, logs.String(), "policy="+policy.String())
			require.Contains(t, logs.String(), "id=m-7")
		})
	}
}

func TestHookDown(t *testing.T) {
	t.Parallel()
	for _, policy := range []HookPolicy{HookFailOpen, HookFailClosed} {
		t.Run(policy.String(), func(t *testing.T) {
			t.Parallel()
			h := newTestHook(t, dialHook(t, freeAddr(t)), WithHookPolicy(policy))
			start := time.Now()
			d, err := h.Process(t.Context(), pollReq("m-8"))
			requireHookFailure(t, policy, d, err)
			if err != nil {
				require.Equal(t, codes.Unavailable, status.Code(err), "refused, not timed out")
			}
			require.Less(t, time.Since(start), roomyTimeout, "fails fast, without waiting for the deadline")
		})
	}
}

func TestHookErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		answer func(context.Context, *hookv1.ProcessRequest) (*hookv1.ProcessResponse, error)
		code   codes.Code
	}{
		{
			name: "internal",
			answer: func(context.Context, *hookv1.ProcessRequest) (*hookv1.ProcessResponse, error) {
				return nil, status.Error(codes.Internal, "boom")
			},
			code: codes.Internal,
		},
		{
			name: "invalid argument",
			answer: func(context.Context, *hookv1.ProcessRequest) (*hookv1.ProcessResponse, error) {
				return nil, status.Error(codes.InvalidArgument, "what is this")
			},
			code: codes.InvalidArgument,
		},
		{name: "service not served", code: codes.Unimplemented},
	}
	for _, tt := range tests {
		for _, policy := range []HookPolicy{HookFailOpen, HookFailClosed} {
			t.Run(tt.name+"/"+policy.String(), func(t *testing.T) {
				t.Parallel()
				_, addr, _ := startHookServer(t, tt.answer)
				h := newTestHook(t, dialHook(t, addr), WithHookPolicy(policy))
				d, err := h.Process(t.Context(), pollReq("m-9"))
				requireHookFailure(t, policy, d, err)
				if err != nil {
					require.Equal(t, tt.code, status.Code(err))
				}
			})
		}
	}
}

func TestHookCallerGaveUp(t *testing.T) {
	t.Parallel()
	for _, policy := range []HookPolicy{HookFailOpen, HookFailClosed} {
		t.Run(policy.String(), func(t *testing.T) {
			t.Parallel()
			entered := make(chan struct{})
			_, addr, _ := startHookServer(t, func(ctx context.Context, _ *hookv1.ProcessRequest) (*hookv1.ProcessResponse, error) {
				close(entered)
				<-ctx.Done()
				return nil, status.FromContextError(ctx.Err()).Err()
			})
			h := newTestHook(t, dialHook(t, addr), WithHookPolicy(policy))
			ctx, cancel := context.WithCancel(t.Context())
			go func() {
				<-entered
				cancel()
			}()
			_, err := h.Process(ctx, pollReq("m-10"))
			require.ErrorIs(t, err, context.Canceled, "neither skipped nor retryable: nobody waits")
			require.NotErrorIs(t, err, ErrUnavailable)
		})
	}
}

func TestHookInvalidAnswers(t *testing.T) {
	t.Parallel()
	reject := func(code int32, text string, payload string) *hookv1.ProcessResponse {
		return &hookv1.ProcessResponse{Decision: &hookv1.ProcessResponse_Reject{Reject: &hookv1.Reject{Code: code, Text: text, Payload: []byte(payload)}}}
	}
	deliver := func(rs ...*deliveryv1.Recipient) *hookv1.ProcessResponse {
		return &hookv1.ProcessResponse{Decision: &hookv1.ProcessResponse_Deliver{Deliver: &hookv1.Deliver{Recipients: rs, Receipt: true}}}
	}
	reply := func(ms ...*commonv1.Message) *hookv1.ProcessResponse {
		return &hookv1.ProcessResponse{Decision: &hookv1.ProcessResponse_Reply{Reply: &hookv1.Reply{Messages: ms}}}
	}
	deep := strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40)
	tests := []struct {
		name    string
		answer  *hookv1.ProcessResponse
		problem string // in the error
	}{
		{name: "no decision", answer: &hookv1.ProcessResponse{}, problem: "no decision"},
		{name: "reject code 0", answer: reject(0, "", ""), problem: "code 0"},
		{name: "reject code below the custom range", answer: reject(9999, "", ""), problem: "code 9999"},
		{name: "reject code above the custom range", answer: reject(20000, "", ""), problem: "code 20000"},
		{name: "reject code negative", answer: reject(-4100, "", ""), problem: "code -4100"},
		{name: "reject code in an area but not the table", answer: reject(4099, "", ""), problem: "code 4099"},
		{name: "reject payload an array", answer: reject(10000, "", `[1]`), problem: "payload"},
		{name: "reject payload a string", answer: reject(10000, "", `"x"`), problem: "payload"},
		{name: "reject payload not JSON", answer: reject(10000, "", `{"a":`), problem: "payload"},
		{name: "reject payload two objects", answer: reject(10000, "", `{} {}`), problem: "payload"},
		{name: "reject payload too deep", answer: reject(10000, "", deep), problem: "payload"},
		{name: "reject text too long", answer: reject(10000, strings.Repeat("x", protocol.DefaultMaxFrameSize), ""), problem: "bytes, limit"},
		{name: "deliver without recipients", answer: deliver(), problem: "no recipients"},
		{name: "deliver to a user and a room at once", answer: deliver(&deliveryv1.Recipient{User: "@bob@localhost", Room: "!r@localhost"}), problem: "exactly one"},
		{name: "deliver to nobody named", answer: deliver(&deliveryv1.Recipient{ExcludeDevice: "laptop"}), problem: "exactly one"},
		{name: "deliver to a bare username", answer: deliver(&deliveryv1.Recipient{User: "bob"}), problem: `user "bob"`},
		{name: "deliver to a room as a user", answer: deliver(&deliveryv1.Recipient{User: "!r@localhost"}), problem: "not a user ID"},
		{name: "deliver to a user as a room", answer: deliver(&deliveryv1.Recipient{Room: "@bob@localhost"}), problem: "not a room ID"},
		{name: "deliver with one bad recipient of two", answer: deliver(&deliveryv1.Recipient{User: "@bob@localhost"}, &deliveryv1.Recipient{User: "@"}), problem: "recipient 2"},
		{name: "reply without an id", answer: reply(&commonv1.Message{Type: "poll"}), problem: "reply 1"},
		{name: "reply without a type", answer: reply(&commonv1.Message{Id: "p-1"}), problem: "reply 1"},
		{name: "reply with data that is not JSON", answer: reply(&commonv1.Message{Id: "p-1", Type: "poll"}, &commonv1.Message{Id: "p-1", Type: "poll", Data: []byte(`1,"sign":"00"`)}), problem: "reply 2"},
		{name: "reply with a bad dest", answer: reply(&commonv1.Message{Id: "p-1", Type: "poll", Dest: "a b"}), problem: "reply 1"},
		{name: "reply too large", answer: reply(&commonv1.Message{Id: "p-1", Type: "poll", Data: []byte(`"` + strings.Repeat("x", protocol.DefaultMaxFrameSize) + `"`)}), problem: "reply 1"},
		{name: "reply too deep", answer: reply(&commonv1.Message{Id: "p-1", Type: "poll", Data: []byte(deep)}), problem: "reply 1"},
	}
	for _, tt := range tests {
		for _, policy := range []HookPolicy{HookFailOpen, HookFailClosed} {
			t.Run(tt.name+"/"+policy.String(), func(t *testing.T) {
				t.Parallel()
				hs, addr, _ := startHookServer(t, answerWith(tt.answer))
				var logs syncBuffer
				h := newTestHook(t, dialHook(t, addr), WithHookPolicy(policy),
					WithHookLogger(slog.New(slog.NewTextHandler(&logs, nil))))
				d, err := h.Process(t.Context(), pollReq("m-11"))
				requireHookFailure(t, policy, d, err, ErrHookAnswer)
				if err != nil {
					require.Contains(t, err.Error(), tt.problem)
				}
				require.Equal(t, int64(1), hs.calls.Load())
				logged := strings.ReplaceAll(logs.String(), `\"`, `"`) // unquote the err attribute
				require.Contains(t, logged, "route hook failed")
				require.Contains(t, logged, tt.problem)
			})
		}
	}
}

// TestHookConcurrent runs many calls at once through one hook and one
// connection (run with -race): every sender gets its own answer.
func TestHookConcurrent(t *testing.T) {
	t.Parallel()
	_, addr, _ := startHookServer(t, func(_ context.Context, req *hookv1.ProcessRequest) (*hookv1.ProcessResponse, error) {
		m := req.GetMessage()
		return &hookv1.ProcessResponse{Decision: &hookv1.ProcessResponse_Reply{Reply: &hookv1.Reply{Messages: []*commonv1.Message{
			{Id: m.GetId(), Type: "poll", Data: fmt.Appendf(nil, "%q", m.GetId())},
		}}}}, nil
	})
	h := newTestHook(t, dialHook(t, addr))
	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("m-%d-%d", w, i)
				d, err := h.Process(t.Context(), pollReq(id))
				switch {
				case err != nil:
					errs <- err
				case d.Kind() != KindReply || string(d.Replies()[0].GetData()) != fmt.Sprintf("%q", id):
					errs <- fmt.Errorf("%s: decided %v: %v", id, d.Kind(), d.Replies())
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func TestNewHook(t *testing.T) {
	t.Parallel()
	client := hookv1.NewRouteHookServiceClient(nil) // never called

	h, err := NewHook("spam-filter", client)
	require.NoError(t, err)
	require.Equal(t, "spam-filter", h.Name())
	require.Equal(t, DefaultHookTimeout, h.Timeout())
	require.Equal(t, HookFailClosed, h.Policy(), "closed by default")
	require.Empty(t, h.Types())
	require.NoError(t, h.Close(), "a hook that owns no connection closes nothing")

	h, err = NewHook("x", client, WithHookTimeout(0), WithHookTimeout(-time.Second), WithHookLogger(nil))
	require.NoError(t, err)
	require.Equal(t, DefaultHookTimeout, h.Timeout(), "zero and negative mean the default")

	for _, tt := range []struct {
		name   string
		hook   string
		client hookv1.RouteHookServiceClient
		opts   []HookOption
	}{
		{name: "no name", hook: "", client: client},
		{name: "name with a space", hook: "spam filter", client: client},
		{name: "name with a newline", hook: "spam\n", client: client},
		{name: "no client", hook: "x"},
		{name: "empty type", hook: "x", client: client, opts: []HookOption{WithHookTypes("poll", "")}},
		{name: "unknown policy", hook: "x", client: client, opts: []HookOption{WithHookPolicy(HookPolicy(7))}},
	} {
		_, err := NewHook(tt.hook, tt.client, tt.opts...)
		require.ErrorIs(t, err, ErrBadHook, tt.name)
	}
	require.Equal(t, "open", HookFailOpen.String())
	require.Equal(t, "closed", HookFailClosed.String())
}

// buildHooks builds a chain from a routes file with the built-in registry,
// closed at cleanup.
func buildHooks(t *testing.T, file string) (*Chain, error) {
	t.Helper()
	f, err := ParseFile([]byte(file))
	require.NoError(t, err)
	c, err := NewRegistry().Build(Deps{ServerName: "localhost"}, f.Routes)
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close chain: %v", err)
		}
	})
	return c, err
}

// chainRoute returns the named route of c.
func chainRoute(t *testing.T, c *Chain, name string) Route {
	t.Helper()
	for _, e := range *c.routes.Load() {
		if e.name == name {
			return e.route
		}
	}
	t.Fatalf("no route %q in %v", name, c.Names())
	return nil
}

func TestHookRegistry(t *testing.T) {
	t.Parallel()
	_, pollAddr, _ := startHookServer(t, answerWith(&hookv1.ProcessResponse{Decision: &hookv1.ProcessResponse_Reject{Reject: &hookv1.Reject{Code: 10000}}}))
	_, voteAddr, _ := startHookServer(t, answerWith(&hookv1.ProcessResponse{Decision: &hookv1.ProcessResponse_Reject{Reject: &hookv1.Reject{Code: 10001}}}))
	c, err := buildHooks(t, `{"routes":[
		{"route":"handshake"},
		{"route":"hook","options":{"name":"polls","target":"`+pollAddr+`","types":["poll"],"timeout":"5s","failure":"open"}},
		{"route":"hook","options":{"name":"votes","target":"`+voteAddr+`","types":["vote"],"failure":"closed"}},
		{"route":"hook","options":{"name":"minimal","target":"dns:///localhost:1"}},
		{"route":"direct"}]}`)
	require.NoError(t, err)
	require.Equal(t, []string{"handshake", "polls", "votes", "minimal", "direct"}, c.Names())

	polls, ok := chainRoute(t, c, "polls").(*Hook)
	require.True(t, ok)
	require.Equal(t, []string{"poll"}, polls.Types())
	require.Equal(t, 5*time.Second, polls.Timeout())
	require.Equal(t, HookFailOpen, polls.Policy())
	votes, ok := chainRoute(t, c, "votes").(*Hook)
	require.True(t, ok)
	require.Equal(t, DefaultHookTimeout, votes.Timeout())
	require.Equal(t, HookFailClosed, votes.Policy())
	minimal, ok := chainRoute(t, c, "minimal").(*Hook)
	require.True(t, ok)
	require.Empty(t, minimal.Types())
	require.Equal(t, HookFailClosed, minimal.Policy(), "closed by default")

	for typ, want := range map[string]struct {
		route string
		code  protocol.Code
	}{"poll": {"polls", 10000}, "vote": {"votes", 10001}} {
		req := pollReq("m-12")
		req.Message.Type = typ
		res, err := c.Run(t.Context(), req)
		require.NoError(t, err)
		require.Equal(t, want.route, res.Route)
		require.Equal(t, want.code, res.Decision.Rejection().Code)
	}
}

func TestHookRegistryBadOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		options string // the spec's "options"; empty: none
		want    []string
	}{
		{name: "no options", want: []string{"name: required", "target: required"}},
		{name: "empty options", options: `{}`, want: []string{"name: required", "target: required"}},
		{name: "unknown field", options: `{"name":"a","target":"127.0.0.1:1","timout":"1s"}`, want: []string{`unknown field "timout"`}},
		{name: "no name", options: `{"target":"127.0.0.1:1"}`, want: []string{"name: required"}},
		{name: "name with a space", options: `{"name":"spam filter","target":"127.0.0.1:1"}`, want: []string{`name "spam filter"`}},
		{name: "no target", options: `{"name":"a"}`, want: []string{"target: required"}},
		{name: "target without a port", options: `{"name":"a","target":"hooks"}`, want: []string{`target "hooks"`}},
		{name: "target a URL", options: `{"name":"a","target":"http://hooks:80/"}`, want: []string{`target "http://hooks:80/"`}},
		{name: "types not a list", options: `{"name":"a","target":"127.0.0.1:1","types":"poll"}`, want: []string{"types"}},
		{name: "empty type", options: `{"name":"a","target":"127.0.0.1:1","types":["poll",""]}`, want: []string{"types: empty type"}},
		{name: "timeout not a duration", options: `{"name":"a","target":"127.0.0.1:1","timeout":"fast"}`, want: []string{`timeout "fast"`}},
		{name: "timeout without a unit", options: `{"name":"a","target":"127.0.0.1:1","timeout":"200"}`, want: []string{`timeout "200"`}},
		{name: "timeout zero", options: `{"name":"a","target":"127.0.0.1:1","timeout":"0s"}`, want: []string{`timeout "0s"`}},
		{name: "timeout negative", options: `{"name":"a","target":"127.0.0.1:1","timeout":"-1s"}`, want: []string{`timeout "-1s"`}},
		{name: "timeout a number", options: `{"name":"a","target":"127.0.0.1:1","timeout":200}`, want: []string{"timeout"}},
		{name: "unknown failure policy", options: `{"name":"a","target":"127.0.0.1:1","failure":"ignore"}`, want: []string{`failure "ignore"`}},
		{name: "failure policy in capitals", options: `{"name":"a","target":"127.0.0.1:1","failure":"OPEN"}`, want: []string{`failure "OPEN"`}},
		{
			name:    "every problem at once",
			options: `{"name":"a b","target":"x","types":[""],"timeout":"x","failure":"x"}`,
			want:    []string{`name "a b"`, `target "x"`, "types", `timeout "x"`, `failure "x"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec := Spec{Route: "hook"}
			if tt.options != "" {
				spec.Options = json.RawMessage(tt.options)
			}
			c, err := NewRegistry().Build(Deps{ServerName: "localhost"}, []Spec{{Route: "handshake"}, spec})
			require.Nil(t, c)
			require.ErrorIs(t, err, ErrBadHook)
			require.Contains(t, err.Error(), `route 2 "hook"`)
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestHookRegistryDuplicateNames(t *testing.T) {
	t.Parallel()
	_, err := buildHooks(t, `{"routes":[
		{"route":"hook","options":{"name":"polls","target":"127.0.0.1:1"}},
		{"route":"hook","options":{"name":"polls","target":"127.0.0.1:2"}}]}`)
	require.ErrorIs(t, err, ErrBadRoute)
	require.Contains(t, err.Error(), `"polls"`)

	// A hook may not take the name of a built-in route either.
	_, err = buildHooks(t, `{"routes":[
		{"route":"hook","options":{"name":"direct","target":"127.0.0.1:1"}},
		{"route":"direct"}]}`)
	require.ErrorIs(t, err, ErrBadRoute)
}

// closer is a route that records when it is closed.
type closer struct {
	name   string
	err    error
	closed *[]string
	mu     *sync.Mutex
}

func (c closer) Name() string { return c.name }

func (closer) Process(context.Context, *Request) (Decision, error) { return Pass(), nil }

func (c closer) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	*c.closed = append(*c.closed, c.name)
	return c.err
}

func TestChainClose(t *testing.T) {
	t.Parallel()
	var (
		mu     sync.Mutex
		closed []string
	)
	boom := errors.New("boom")
	c, err := New(
		closer{name: "a", closed: &closed, mu: &mu},
		NewHandshake(),
		closer{name: "b", err: boom, closed: &closed, mu: &mu},
		closer{name: "c", closed: &closed, mu: &mu},
	)
	require.NoError(t, err)
	require.ErrorIs(t, c.Close(), boom, "errors are returned")
	require.Equal(t, []string{"c", "b", "a"}, closed, "every closer, last first")

	var nilChain *Chain
	require.NoError(t, nilChain.Close())
	empty, err := New()
	require.NoError(t, err)
	require.NoError(t, empty.Close())
}

// TestBuildClosesRoutesOnFailure checks that a chain that cannot be built
// leaves no route open: those built before a bad spec, and those of a
// chain New refuses.
func TestBuildClosesRoutesOnFailure(t *testing.T) {
	t.Parallel()
	var (
		mu     sync.Mutex
		closed []string
	)
	r := NewRegistry()
	require.NoError(t, r.Register("closer", func(_ Deps, o json.RawMessage) (Route, error) {
		opts := struct {
			Name string `json:"name"`
		}{}
		if err := DecodeOptions(o, &opts); err != nil {
			return nil, err
		}
		return closer{name: opts.Name, closed: &closed, mu: &mu}, nil
	}))
	deps := Deps{ServerName: "localhost"}

	_, err := r.Build(deps, []Spec{
		{Route: "closer", Options: json.RawMessage(`{"name":"a"}`)},
		{Route: "nope"},
		{Route: "closer", Options: json.RawMessage(`{"name":"b"}`)},
	})
	require.ErrorIs(t, err, ErrUnknownRoute)
	require.Equal(t, []string{"b", "a"}, closed)

	closed = nil
	_, err = r.Build(deps, []Spec{
		{Route: "closer", Options: json.RawMessage(`{"name":"x"}`)},
		{Route: "closer", Options: json.RawMessage(`{"name":"x"}`)},
	})
	require.ErrorIs(t, err, ErrBadRoute)
	require.Equal(t, []string{"x", "x"}, closed)
}

// TestHookCleanup builds hooks from a routes file, uses them, and checks
// that closing the chain closes their connections and leaves no goroutine
// behind. It is not parallel, and ignores the goroutines that were there
// before it (other tests', paused by t.Parallel), so that goleak sees only
// its own.
func TestHookCleanup(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	hs, addr, stop := startHookServer(t, answerWith(&hookv1.ProcessResponse{Decision: &hookv1.ProcessResponse_Reply{Reply: &hookv1.Reply{}}}))
	defer stop() // before goleak looks, also when the test fails
	f, err := ParseFile([]byte(`{"routes":[
		{"route":"hook","options":{"name":"polls","target":"` + addr + `","types":["poll"],"timeout":"10s"}},
		{"route":"hook","options":{"name":"votes","target":"` + addr + `","types":["vote"],"timeout":"10s","failure":"open"}},
		{"route":"hook","options":{"name":"unused","target":"` + addr + `","types":["never"]}},
		{"route":"direct"}]}`))
	require.NoError(t, err)
	c, err := NewRegistry().Build(Deps{ServerName: "localhost"}, f.Routes)
	require.NoError(t, err)

	var conns []*grpc.ClientConn
	for _, name := range []string{"polls", "votes", "unused"} {
		h, ok := chainRoute(t, c, name).(*Hook)
		require.True(t, ok)
		cc, ok := h.conn.(*grpc.ClientConn)
		require.True(t, ok, "the hook owns the connection it dialed")
		conns = append(conns, cc)
	}
	for _, typ := range []string{"poll", "vote"} {
		req := pollReq("m-13")
		req.Message.Type = typ
		res, err := c.Run(t.Context(), req)
		require.NoError(t, err)
		require.Equal(t, KindReply, res.Decision.Kind())
	}
	require.Equal(t, int64(2), hs.calls.Load())

	require.NoError(t, c.Close())
	for _, cc := range conns {
		require.Equal(t, connectivity.Shutdown, cc.GetState())
	}
	require.NoError(t, c.Close(), "closing twice is harmless")

	// After Close a call is a hook failure, handled by the policy.
	_, err = c.Run(t.Context(), pollReq("m-14"))
	require.ErrorIs(t, err, ErrUnavailable)
	vote := pollReq("m-15")
	vote.Message.Type = "vote"
	vote.Message.Dest = "bob"
	res, err := c.Run(t.Context(), vote)
	require.NoError(t, err, "the open hook is skipped")
	require.Empty(t, res.Route)
	require.Equal(t, protocol.CodeUnknownType, res.Decision.Rejection().Code, "and no other route owns votes")
	require.Equal(t, int64(2), hs.calls.Load())
}
