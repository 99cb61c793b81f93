package ws

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	routerv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/router/v1"
)

// FuzzFramePath sends arbitrary frames from a client socket through the
// gateway's reader, decoder and handler to the router call: the process
// must not crash, the connection must stay open (binary frames and bad
// JSON are answered, not fatal), every frame the gateway writes must be
// JSON, a binary frame must get error 4009, and whatever reaches the
// router must be a well-formed message of the authenticated sender.
func FuzzFramePath(f *testing.F) {
	for _, seed := range []string{
		`{"id":"m1","type":"direct","dest":"bob","data":{"text":"hi"}}`,
		`{"type":200,"data":"m1"}`,
		`{"type":1001}`,
		`{"id":"m2","type":"group","dest":"!room@localhost","data":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
		`{"id":"` + string(make([]byte, 300)) + `","type":"direct","dest":"bob"}`,
		"{\"id\":\"\xff\xfe\",\"type\":\"direct\",\"dest\":\"bob\"}",
		`{"id":"\ud800","type":"direct","dest":"bob"}`,
		`not json`,
		`{"id":"m3","type":"handshake","data":{"title":"Hello world!"}}`,
		`[]`, `null`, `{"type":1e400}`,
	} {
		f.Add(false, []byte(seed))
	}
	f.Add(true, []byte{0, 1, 2, 0xff})

	h := newHarness(f)
	var (
		mu     sync.Mutex
		routed []*routerv1.RouteRequest
	)
	h.peers.SetRoute(func(_ context.Context, req *routerv1.RouteRequest) (*routerv1.RouteResponse, error) {
		mu.Lock()
		routed = append(routed, req)
		mu.Unlock()
		return &routerv1.RouteResponse{Outcome: routerv1.Outcome_OUTCOME_QUEUED, TimeMs: 1}, nil
	})
	c := h.dial("alice", "phone")
	nonce, seq := time.Now().UnixNano(), 0

	f.Fuzz(func(t *testing.T, binary bool, payload []byte) {
		if len(payload) > 4000 { // under the harness's 4096-byte limit
			return
		}
		mu.Lock()
		routed = routed[:0]
		mu.Unlock()
		typ := websocket.MessageText
		if binary {
			typ = websocket.MessageBinary
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := c.conn.Write(ctx, typ, payload); err != nil {
			t.Fatalf("write: %v", err)
		}
		// A message of our own after the frame: its 100 comes once the
		// frame was handled, since a connection's frames are handled in
		// order. The id is new each time, so no input can fake it.
		seq++
		syncID := fmt.Sprintf("sync-%d-%d", nonce, seq)
		if err := c.conn.Write(ctx, websocket.MessageText, []byte(`{"id":"`+syncID+`","type":"direct","dest":"bob"}`)); err != nil {
			t.Fatalf("write sync: %v", err)
		}
		var replies []map[string]any
		for {
			mt, b, err := c.conn.Read(ctx)
			if err != nil {
				t.Fatalf("connection ended after %q: %v", payload, err)
			}
			if mt != websocket.MessageText {
				t.Fatalf("gateway wrote a binary frame")
			}
			var v map[string]any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatalf("gateway wrote a frame that is not a JSON object: %q", b)
			}
			if v["type"] == float64(100) && v["data"] == syncID {
				break
			}
			replies = append(replies, v)
		}
		if binary && !hasErrCode(replies, 4009) {
			t.Fatalf("binary frame answered %v, want error 4009", replies)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, req := range routed {
			m := req.GetMessage()
			switch {
			case req.GetSender().GetDevice().GetUser() != "@alice@localhost" || req.GetSender().GetDevice().GetDevice() != "phone":
				t.Fatalf("routed for sender %v", req.GetSender())
			case m.GetId() == "" || len(m.GetId()) > 128 || !utf8.ValidString(m.GetId()):
				t.Fatalf("routed a message with id %q", m.GetId())
			case m.GetType() == "" || len(m.GetType()) > 128 || !utf8.ValidString(m.GetType()):
				t.Fatalf("routed a message with type %q", m.GetType())
			case !utf8.ValidString(m.GetDest()):
				t.Fatalf("routed a message with dest %q", m.GetDest())
			case len(m.GetData()) > 0 && !json.Valid(m.GetData()):
				t.Fatalf("routed data that is not JSON: %q", m.GetData())
			}
		}
	})
}

func hasErrCode(frames []map[string]any, code int) bool {
	for _, f := range frames {
		if d, ok := f["data"].(map[string]any); ok && d["errCode"] == float64(code) {
			return true
		}
	}
	return false
}
