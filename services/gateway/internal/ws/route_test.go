package ws

import (
	"context"
	"net"
	"testing"
	"time"

	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	routerv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/router/v1"
	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
)

func TestDataMessageIsRoutedWithAuthenticatedSender(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.dial("alice", "phone")
	c.sendRaw(`{"id":"m1","type":"direct","from":"@mallory@localhost","time":5,"dest":"@bob@localhost","data":{"text": "hi"},"sign":"ab12"}`)
	require.Equal(t, `{"type":100,"data":"m1"}`, c.next().raw)

	routes := h.peers.Routes()
	require.Len(t, routes, 1)
	s := routes[0].GetSender()
	require.Equal(t, "@alice@localhost", s.GetDevice().GetUser())
	require.Equal(t, "phone", s.GetDevice().GetDevice())
	require.Equal(t, gatewayID, s.GetGatewayId())
	require.Equal(t, h.peers.Connects()[0].GetConnectionId(), s.GetConnectionId())
	require.Equal(t, c.ready.dataString(), s.GetSessionKey())
	m := routes[0].GetMessage()
	require.Equal(t, "m1", m.GetId())
	require.Equal(t, "direct", m.GetType())
	require.Equal(t, "@bob@localhost", m.GetDest())
	require.Equal(t, `{"text":"hi"}`, string(m.GetData()), "data compacted, byte-exact otherwise")
	require.Equal(t, "ab12", m.GetSign())
}

func TestRouteOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		resp *routerv1.RouteResponse
		// want are the frames written for the message, before the pong.
		want []string
	}{
		{
			name: "queued",
			resp: &routerv1.RouteResponse{Outcome: routerv1.Outcome_OUTCOME_QUEUED},
			want: []string{`{"type":100,"data":"m1"}`},
		},
		{
			name: "duplicate",
			resp: &routerv1.RouteResponse{Outcome: routerv1.Outcome_OUTCOME_DUPLICATE},
			want: []string{`{"type":100,"data":"m1"}`},
		},
		{
			name: "sent",
			resp: &routerv1.RouteResponse{Outcome: routerv1.Outcome_OUTCOME_SENT},
		},
		{
			name: "replied",
			resp: &routerv1.RouteResponse{Outcome: routerv1.Outcome_OUTCOME_REPLIED, Replies: []*commonv1.Message{
				{Id: "m1", Type: "handshake", TimeMs: 42, From: "", Dest: "@alice@localhost", Data: []byte(`{"title":"DIM?","session":"k"}`)},
				{Id: "m1", Type: "app", TimeMs: 43, Data: []byte(`{"ok":true}`), Sign: "ff"},
			}},
			want: []string{
				`{"id":"m1","type":"handshake","time":42,"dest":"@alice@localhost","data":{"title":"DIM?","session":"k"}}`,
				`{"id":"m1","type":"app","time":43,"data":{"ok":true},"sign":"ff"}`,
			},
		},
		{
			name: "rejected",
			resp: &routerv1.RouteResponse{Outcome: routerv1.Outcome_OUTCOME_REJECTED, Error: &commonv1.ErrorDetail{
				Code: 4100, Text: "Incorrect type of message", Payload: []byte(`{"known":["direct"]}`),
			}},
			want: []string{`{"id":"m1","type":"direct:error","data":{"errCode":4100,"errText":"Incorrect type of message","errPayload":{"known":["direct"]}}}`},
		},
		{
			name: "rejected without payload",
			resp: &routerv1.RouteResponse{Outcome: routerv1.Outcome_OUTCOME_REJECTED, Error: &commonv1.ErrorDetail{Code: 4102, Text: "not a member of the room"}},
			want: []string{`{"id":"m1","type":"direct:error","data":{"errCode":4102,"errText":"not a member of the room","errPayload":{}}}`},
		},
		{
			name: "unknown outcome",
			resp: &routerv1.RouteResponse{},
			want: []string{`{"id":"m1","type":"direct:error","data":{"errCode":5000,"errText":"internal server error","errPayload":{}}}`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.peers.SetRoute(func(context.Context, *routerv1.RouteRequest) (*routerv1.RouteResponse, error) {
				return tt.resp, nil
			})
			c := h.dial("alice", "phone")
			c.sendRaw(`{"id":"m1","type":"direct","dest":"bob","data":{"text":"hi"}}`)
			for _, w := range tt.want {
				require.Equal(t, w, c.next().raw)
			}
			c.pingPong() // nothing else was written
		})
	}
}

func TestRouteFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		mod      harnessOpt
		setup    func(h *harness)
		wantCode int
	}{
		{
			name: "router unreachable",
			mod: func(_ *Options, routerAddr *string) {
				lis, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					panic(err)
				}
				*routerAddr = lis.Addr().String()
				_ = lis.Close() // nothing listens there now
			},
			wantCode: 5001,
		},
		{
			name: "router times out",
			mod:  func(o *Options, _ *string) { o.RPCTimeout = 200 * time.Millisecond },
			setup: func(h *harness) {
				h.peers.SetRoute(func(ctx context.Context, _ *routerv1.RouteRequest) (*routerv1.RouteResponse, error) {
					<-ctx.Done()
					return nil, ctx.Err()
				})
			},
			wantCode: 5002,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, tt.mod)
			if tt.setup != nil {
				tt.setup(h)
			}
			c := h.dial("alice", "phone")
			c.sendRaw(`{"id":"m1","type":"direct","dest":"bob","data":{"text":"hi"}}`)
			f := c.next()
			require.Equal(t, "m1", f.ID)
			require.Equal(t, "direct:error", f.dataType())
			require.Equal(t, tt.wantCode, f.errBody(t).ErrCode)
			c.pingPong()
		})
	}
}

func TestMessagesOfOneConnectionAreRoutedInOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	inFlight := make(chan struct{}, 1)
	h.peers.SetRoute(func(context.Context, *routerv1.RouteRequest) (*routerv1.RouteResponse, error) {
		select {
		case inFlight <- struct{}{}:
		default:
			t.Error("two Route calls of one connection in flight at once")
		}
		time.Sleep(time.Millisecond) // widens the window in which a second call would overlap
		<-inFlight
		return &routerv1.RouteResponse{Outcome: routerv1.Outcome_OUTCOME_QUEUED}, nil
	})
	c := h.dial("alice", "phone")
	ids := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	for _, id := range ids {
		c.sendRaw(`{"id":"` + id + `","type":"direct","dest":"bob","data":{}}`)
	}
	for _, id := range ids {
		require.Equal(t, `{"type":100,"data":"`+id+`"}`, c.next().raw)
	}
	var got []string
	for _, r := range h.peers.Routes() {
		got = append(got, r.GetMessage().GetId())
	}
	require.Equal(t, ids, got)
}

func TestBadFramesGetErrorRepliesAndConnectionStays(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		binary   bool
		frame    string
		wantType string
		wantID   string
		wantCode int
	}{
		{name: "not JSON", frame: `not json`, wantType: "error", wantCode: 4000},
		{name: "empty", frame: ``, wantType: "error", wantCode: 4000},
		{name: "JSON but not an object", frame: `[1,2]`, wantType: "error", wantCode: 4001},
		{name: "no type", frame: `{"id":"x"}`, wantType: "error", wantID: "x", wantCode: 4002},
		{name: "unknown transport type", frame: `{"type":12345}`, wantType: "error", wantCode: 4003},
		{name: "server-only 100", frame: `{"type":100,"data":"m1"}`, wantType: "error", wantCode: 4003},
		{name: "server-only 1000", frame: `{"type":1000,"data":"key"}`, wantType: "error", wantCode: 4003},
		{name: "data message without id", frame: `{"type":"direct","dest":"bob"}`, wantType: "direct:error", wantCode: 4004},
		{name: "bad dest", frame: `{"id":"m1","type":"direct","dest":"Bob!"}`, wantType: "direct:error", wantID: "m1", wantCode: 4006},
		{name: "binary frame", binary: true, frame: `{"type":1001}`, wantType: "error", wantCode: 4009},
	}
	h := newHarness(t)
	c := h.dial("alice", "phone")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ := websocket.MessageText
			if tt.binary {
				typ = websocket.MessageBinary
			}
			require.NoError(t, c.conn.Write(t.Context(), typ, []byte(tt.frame)))
			f := c.next()
			require.Equal(t, tt.wantType, f.dataType(), "reply %s", f.raw)
			require.Equal(t, tt.wantID, f.ID)
			b := f.errBody(t)
			require.Equal(t, tt.wantCode, b.ErrCode)
			require.NotEmpty(t, b.ErrText)
			require.JSONEq(t, `{}`, string(b.ErrPayload))
			c.pingPong()
		})
	}
	require.Empty(t, h.peers.Routes(), "nothing bad was routed")
}

func TestOversizeFrameClosesWith1009(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *Options, _ *string) { o.IO.MaxMessage = 1024 })
	c := h.dial("alice", "phone")
	big := make([]byte, 1025)
	for i := range big {
		big[i] = 'x'
	}
	require.NoError(t, c.conn.Write(t.Context(), websocket.MessageText, big))
	code, _, _ := c.closeStatus()
	require.Equal(t, websocket.StatusMessageTooBig, code)
	eventually(t, func() bool { return len(h.peers.Detaches()) == 1 }, "close path ran")
}
