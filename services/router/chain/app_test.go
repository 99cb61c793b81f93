package chain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/bachata-chat/bachata/libs/natsx"
	"github.com/bachata-chat/bachata/libs/protocol"
	"github.com/bachata-chat/bachata/libs/testkit"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
)

// The prefix of every test's subjects; each test has its own NATS server.
const testPrefix = "test"

// The subject the tests' backend answers on: app "chat.example.echo".
const echoSubjects = testPrefix + ".app.chat_example_echo.>"

var aliceLaptop = &commonv1.DeviceRef{User: "@alice@localhost", Device: "laptop"}

// appReq is an app message from Alice's laptop, stamped as the router does.
func appReq(id, data string) *Request {
	return &Request{
		Message: &commonv1.Message{
			Id: id, Type: protocol.TypeApp, TimeMs: 1700000000300,
			From: aliceLaptop.GetUser(), Data: []byte(data),
		},
		Sender:     aliceLaptop,
		SessionKey: "k",
	}
}

// respond answers every request on subject with reply(request) from its
// own connection, and waits until the server knows the subscription.
func respond(t *testing.T, n *testkit.NATS, subject string, reply func(*nats.Msg) []byte) {
	t.Helper()
	nc := n.Conn()
	_, err := nc.QueueSubscribe(subject, "backend", func(m *nats.Msg) {
		if err := m.Respond(reply(m)); err != nil {
			t.Errorf("respond: %v", err)
		}
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
}

// spy subscribes to every subject and returns a function that asserts the
// next message it sees is a sentinel published on conn now, proving that
// nothing else was published on conn since the spy started.
func spy(t *testing.T, n *testkit.NATS, conn *nats.Conn) (assertQuiet func()) {
	t.Helper()
	s := n.Conn()
	sub, err := s.SubscribeSync(">")
	require.NoError(t, err)
	require.NoError(t, s.Flush())
	return func() {
		t.Helper()
		require.NoError(t, conn.Publish("sentinel", nil))
		require.NoError(t, conn.Flush())
		m, err := sub.NextMsg(5 * time.Second)
		require.NoError(t, err)
		require.Equal(t, "sentinel", m.Subject, "the route published %q: %q", m.Subject, m.Data)
	}
}

func newTestApp(t *testing.T, nc Requester, opts ...AppOption) *App {
	t.Helper()
	a, err := NewApp(nc, natsx.Subjects{Prefix: testPrefix}, opts...)
	require.NoError(t, err)
	return a
}

// requesterFunc is a Requester for tests that need no server.
type requesterFunc func(ctx context.Context, msg *nats.Msg) (*nats.Msg, error)

func (f requesterFunc) RequestMsgWithContext(ctx context.Context, msg *nats.Msg) (*nats.Msg, error) {
	return f(ctx, msg)
}

func TestAppRoundTrip(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	got := make(chan *nats.Msg, 1)
	respond(t, n, echoSubjects, func(m *nats.Msg) []byte {
		got <- m
		var r AppRequest
		if err := json.Unmarshal(m.Data, &r); err != nil {
			return []byte(`{"error":"bad request"}`)
		}
		// Whitespace, as a careless backend would send it.
		return fmt.Appendf(nil, "{ \"act\" : %q,\n \"echo\": %s }", r.Act, r.Extra)
	})
	nc := n.Conn()
	a := newTestApp(t, nc)

	req := appReq("m-3", `{"type":204,"sn":7,"app":"chat.example.echo","mod":"say","act":"hello","extra":{"text":"<b>&</b> café","n":[1, 2.50]}}`)
	req.Message.Dest = "bob"
	d, err := a.Process(t.Context(), req)
	require.NoError(t, err)
	require.NoError(t, d.check())
	require.Equal(t, KindReply, d.Kind(), "rejection: %v", d.Rejection())
	require.Len(t, d.Replies(), 1)
	r := d.Replies()[0]
	require.Equal(t, "m-3", r.GetId())
	require.Equal(t, "app", r.GetType())
	require.Equal(t, int64(1700000000300), r.GetTimeMs())
	require.Equal(t, "@alice@localhost", r.GetDest())
	require.Empty(t, r.GetFrom(), "the server answers")
	require.Equal(t, `{"act":"hello","echo":{"text":"<b>&</b> café","n":[1,2.50]}}`, string(r.GetData()),
		"compacted, nothing re-escaped or reordered")

	m := <-got
	require.Equal(t, "test.app.chat_example_echo.say.hello", m.Subject)
	require.Equal(t, "m-3", m.Header.Get(AppMsgIDHeader))
	require.Equal(t,
		`{"id":"m-3","time":1700000000300,"from":"@alice@localhost","device":"laptop","dest":"bob",`+
			`"app":"chat.example.echo","mod":"say","act":"hello","extra":{"text":"<b>&</b> café","n":[1,2.50]}}`,
		string(m.Data))
}

func TestAppRequestWithoutExtraOrDest(t *testing.T) {
	t.Parallel()
	var body []byte
	a := newTestApp(t, requesterFunc(func(_ context.Context, msg *nats.Msg) (*nats.Msg, error) {
		body = msg.Data
		return &nats.Msg{Data: []byte(`"ok"`)}, nil
	}))
	d, err := a.Process(t.Context(), appReq("m-4", `{"app":"a","mod":"b","act":"c"}`))
	require.NoError(t, err)
	require.Equal(t, KindReply, d.Kind())
	require.Equal(t, `"ok"`, string(d.Replies()[0].GetData()))
	require.Equal(t, `{"id":"m-4","time":1700000000300,"from":"@alice@localhost","device":"laptop","app":"a","mod":"b","act":"c"}`, string(body))
}

func TestAppNoResponder(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	// A backend of another app must not answer for this one.
	respond(t, n, testPrefix+".app.chat_other.>", func(*nats.Msg) []byte { return []byte(`{}`) })
	a := newTestApp(t, n.Conn())
	d, err := a.Process(t.Context(), appReq("m-5", `{"app":"chat.example.echo","mod":"say","act":"hello"}`))
	require.NoError(t, err)
	require.NoError(t, d.check())
	require.Equal(t, KindReject, d.Kind())
	require.Equal(t, protocol.CodeAppNoResponder, d.Rejection().Code)
	require.True(t, d.Rejection().Retryable())
}

func TestAppTimeout(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	release := make(chan struct{})
	seen := make(chan struct{}, 1)
	backend := n.Conn()
	_, err := backend.Subscribe(echoSubjects, func(*nats.Msg) {
		seen <- struct{}{}
		<-release // never answers: holds the request until the test ends
	})
	require.NoError(t, err)
	require.NoError(t, backend.Flush())
	// Runs before the backend's connection closes (cleanups are LIFO).
	t.Cleanup(func() { close(release) })
	a := newTestApp(t, n.Conn(), WithAppTimeout(100*time.Millisecond))
	require.Equal(t, 100*time.Millisecond, a.Timeout())

	d, err := a.Process(t.Context(), appReq("m-6", `{"app":"chat.example.echo","mod":"say","act":"slow"}`))
	require.NoError(t, err)
	require.Equal(t, KindReject, d.Kind())
	require.Equal(t, protocol.CodeAppTimeout, d.Rejection().Code)
	<-seen
}

func TestAppCallerGaveUp(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	respond(t, n, echoSubjects, func(*nats.Msg) []byte { return []byte(`{}`) })
	a := newTestApp(t, n.Conn())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := a.Process(ctx, appReq("m-7", `{"app":"chat.example.echo","mod":"say","act":"hello"}`))
	require.ErrorIs(t, err, context.Canceled)
}

func TestAppConnectionClosedIsUnavailable(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	nc := n.Conn()
	a := newTestApp(t, nc)
	nc.Close()
	_, err := a.Process(t.Context(), appReq("m-8", `{"app":"chat.example.echo","mod":"say","act":"hello"}`))
	require.ErrorIs(t, err, ErrUnavailable)
	require.ErrorIs(t, err, nats.ErrConnectionClosed)
}

func TestAppBadReplies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		reply    string
		maxFrame int
		wantData string // empty: rejected with 5000
	}{
		{name: "object", reply: `{"ok":true}`, wantData: `{"ok":true}`},
		{name: "string", reply: `"done"`, wantData: `"done"`},
		{name: "number", reply: `42`, wantData: `42`},
		{name: "null", reply: `null`, wantData: `null`},
		{name: "surrounding whitespace", reply: " \n[1, 2]\t", wantData: `[1,2]`},
		{name: "lone surrogate escape is JSON", reply: `"\ud800"`, wantData: `"\ud800"`},
		{name: "31 levels", reply: strings.Repeat("[", 31) + strings.Repeat("]", 31), wantData: strings.Repeat("[", 31) + strings.Repeat("]", 31)},
		{name: "empty", reply: ``},
		{name: "not JSON", reply: `hello`},
		{name: "two values", reply: `{} {}`},
		{name: "injects a frame field", reply: `1,"sign":"00"`},
		{name: "injects a duplicate data", reply: `{},"data":{}`},
		{name: "unterminated", reply: `{"a":`},
		{name: "invalid UTF-8", reply: "\"\xff\""},
		{name: "32 levels in data is 33 in the frame", reply: strings.Repeat("[", 32) + strings.Repeat("]", 32)},
		{name: "frame over the limit", reply: `"` + strings.Repeat("x", 1000) + `"`, maxFrame: 1000},
		{name: "frame at the limit", reply: `"` + strings.Repeat("x", 900) + `"`, maxFrame: 1000, wantData: `"` + strings.Repeat("x", 900) + `"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newTestApp(t, requesterFunc(func(context.Context, *nats.Msg) (*nats.Msg, error) {
				return &nats.Msg{Data: []byte(tt.reply)}, nil
			}), WithAppMaxFrame(tt.maxFrame))
			d, err := a.Process(t.Context(), appReq("m-9", `{"app":"chat.example.echo","mod":"say","act":"hello"}`))
			require.NoError(t, err)
			require.NoError(t, d.check())
			if tt.wantData == "" {
				require.Equal(t, KindReject, d.Kind())
				require.Equal(t, protocol.CodeInternal, d.Rejection().Code)
				return
			}
			require.Equal(t, KindReply, d.Kind(), "rejection: %v", d.Rejection())
			require.Equal(t, tt.wantData, string(d.Replies()[0].GetData()))
		})
	}
}

func TestAppRejectsBeforeAnyRequest(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	nc := n.Conn()
	assertQuiet := spy(t, n, nc)
	a := newTestApp(t, nc)

	long := strings.Repeat("a", 200)
	tests := []struct {
		name     string
		data     string
		system   bool
		wantCode protocol.Code
	}{
		{name: "app with a full wildcard", data: `{"app":"a.>","mod":"m","act":"a"}`},
		{name: "app is a wildcard", data: `{"app":"*","mod":"m","act":"a"}`},
		{name: "app is a full wildcard", data: `{"app":">","mod":"m","act":"a"}`},
		{name: "app with an empty label", data: `{"app":"a..b","mod":"m","act":"a"}`},
		{name: "app with a leading dot", data: `{"app":".a","mod":"m","act":"a"}`},
		{name: "app with a trailing dot", data: `{"app":"a.","mod":"m","act":"a"}`},
		{name: "app with a space", data: `{"app":"a b","mod":"m","act":"a"}`},
		{name: "app with a tab", data: `{"app":"a\tb","mod":"m","act":"a"}`},
		{name: "app in upper case", data: `{"app":"Chat.Dim","mod":"m","act":"a"}`},
		{name: "app with an underscore", data: `{"app":"chat_dim","mod":"m","act":"a"}`},
		{name: "app of 200 bytes", data: `{"app":"` + long + `","mod":"m","act":"a"}`},
		{name: "app of 129 bytes", data: `{"app":"` + long[:129] + `","mod":"m","act":"a"}`},
		{name: "app not ASCII", data: `{"app":"сhat","mod":"m","act":"a"}`},
		{name: "app with an escaped dot and wildcard", data: `{"app":"a\u002e\u003e","mod":"m","act":"a"}`},
		{name: "app with a NUL", data: `{"app":"a\u0000","mod":"m","act":"a"}`},
		{name: "app empty", data: `{"app":"","mod":"m","act":"a"}`},
		{name: "app missing", data: `{"mod":"m","act":"a"}`},
		{name: "app not a string", data: `{"app":["a"],"mod":"m","act":"a"}`},
		{name: "app twice", data: `{"app":"a","app":"b","mod":"m","act":"a"}`},
		{name: "mod with a dot", data: `{"app":"a","mod":"m.x","act":"a"}`},
		{name: "mod with an escaped dot", data: `{"app":"a","mod":"m\u002ex","act":"a"}`},
		{name: "mod is a wildcard", data: `{"app":"a","mod":"*","act":"a"}`},
		{name: "mod is a full wildcard", data: `{"app":"a","mod":">","act":"a"}`},
		{name: "mod with a space", data: `{"app":"a","mod":"m x","act":"a"}`},
		{name: "mod in upper case", data: `{"app":"a","mod":"M","act":"a"}`},
		{name: "mod of 65 bytes", data: `{"app":"a","mod":"` + long[:65] + `","act":"a"}`},
		{name: "act with a full wildcard", data: `{"app":"a","mod":"m","act":"x.>"}`},
		{name: "act with a newline", data: `{"app":"a","mod":"m","act":"x\ny"}`},
		{name: "act not ASCII", data: `{"app":"a","mod":"m","act":"é"}`},
		{name: "act missing", data: `{"app":"a","mod":"m"}`},
		{name: "extra twice", data: `{"app":"a","mod":"m","act":"a","extra":1,"extra":2}`},
		{name: "data is an array", data: `[{"app":"a","mod":"m","act":"a"}]`},
		{name: "data is a string", data: `"a.m.a"`},
		{name: "no data", data: ``},
		{name: "system message", data: `{"app":"a","mod":"m","act":"a"}`, system: true, wantCode: protocol.CodeForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := appReq("m-10", tt.data)
			if tt.data == "" {
				req.Message.Data = nil
			}
			if tt.system {
				req.Sender, req.SessionKey, req.Message.From = nil, "", ""
			}
			d, err := a.Process(t.Context(), req)
			require.NoError(t, err)
			require.NoError(t, d.check())
			require.Equal(t, KindReject, d.Kind())
			want := tt.wantCode
			if want == 0 {
				want = protocol.CodeInvalidApp
			}
			require.Equal(t, want, d.Rejection().Code, "%v", d.Rejection())
		})
	}
	assertQuiet()
}

// TestAppSuffixCheck checks the defensive check on its own, with contents
// that bypass the parser's validation.
func TestAppSuffixCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		content protocol.CustomizedContent
		ok      bool
	}{
		{name: "valid", content: protocol.CustomizedContent{App: "chat.dim.sechat", Mod: "drift_bottle", Act: "throw"}, ok: true},
		{name: "valid with digits and dashes", content: protocol.CustomizedContent{App: "a-1.b2", Mod: "m-_0", Act: "9"}, ok: true},
		{name: "full wildcard in app", content: protocol.CustomizedContent{App: "a.>", Mod: "m", Act: "a"}},
		{name: "wildcard app", content: protocol.CustomizedContent{App: "*", Mod: "m", Act: "a"}},
		{name: "space", content: protocol.CustomizedContent{App: "a b", Mod: "m", Act: "a"}},
		{name: "upper case", content: protocol.CustomizedContent{App: "Chat", Mod: "m", Act: "a"}},
		{name: "full wildcard as act", content: protocol.CustomizedContent{App: "a", Mod: "m", Act: ">"}},
		{name: "dot in mod adds a token", content: protocol.CustomizedContent{App: "app", Mod: "b.c", Act: "d"}},
		{name: "dot in act adds a token", content: protocol.CustomizedContent{App: "a", Mod: "m", Act: "x.>"}},
		{name: "wildcard mod", content: protocol.CustomizedContent{App: "a", Mod: "*", Act: "a"}},
		{name: "empty mod", content: protocol.CustomizedContent{App: "a", Mod: "", Act: "a"}},
		{name: "empty act", content: protocol.CustomizedContent{App: "a", Mod: "m", Act: ""}},
		{name: "control byte", content: protocol.CustomizedContent{App: "a", Mod: "m\x00", Act: "a"}},
		{name: "non-ASCII", content: protocol.CustomizedContent{App: "a", Mod: "m", Act: "\u00e9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			problem := checkAppSuffix(tt.content.SubjectSuffix())
			if tt.ok {
				require.Empty(t, problem)
			} else {
				require.NotEmpty(t, problem)
			}
		})
	}
}

func TestNewApp(t *testing.T) {
	t.Parallel()
	nc := requesterFunc(func(context.Context, *nats.Msg) (*nats.Msg, error) { return nil, errors.New("unused") })
	for _, prefix := range []string{"", "bachata", "env-1.bachata", "Test_1"} {
		a, err := NewApp(nc, natsx.Subjects{Prefix: prefix})
		require.NoError(t, err, "prefix %q", prefix)
		require.Equal(t, "app", a.Name())
		require.Equal(t, DefaultAppTimeout, a.Timeout())
	}
	for _, prefix := range []string{"*", ">", "a.>", "a..b", ".a", "a.", "a b", "a\tb", "bächata"} {
		_, err := NewApp(nc, natsx.Subjects{Prefix: prefix})
		require.ErrorIs(t, err, ErrBadApp, "prefix %q", prefix)
	}
	_, err := NewApp(nil, natsx.Subjects{})
	require.ErrorIs(t, err, ErrBadApp)

	a, err := NewApp(nc, natsx.Subjects{}, WithAppTimeout(0), WithAppTimeout(-time.Second), WithAppMaxFrame(-1), WithAppLogger(nil))
	require.NoError(t, err)
	require.Equal(t, DefaultAppTimeout, a.Timeout(), "zero and negative mean the default")
}

func TestAppPassesOtherTypes(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, requesterFunc(func(context.Context, *nats.Msg) (*nats.Msg, error) {
		t.Error("the route made a request for a message it does not own")
		return nil, errors.New("unexpected")
	}))
	for _, typ := range []string{"direct", "handshake", "App", "app:error", "apps"} {
		req := appReq("m-11", `{"app":"a","mod":"m","act":"a"}`)
		req.Message.Type = typ
		d, err := a.Process(t.Context(), req)
		require.NoError(t, err)
		require.Equal(t, KindPass, d.Kind(), "type %q", typ)
	}
}

// TestAppConcurrent runs many requests at once through one route and one
// connection (run with -race): every sender gets its own answer.
func TestAppConcurrent(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	respond(t, n, echoSubjects, func(m *nats.Msg) []byte {
		var r AppRequest
		if err := json.Unmarshal(m.Data, &r); err != nil {
			return []byte(`{"error":"bad request"}`)
		}
		out, err := json.Marshal(map[string]string{"id": r.ID, "act": r.Act})
		if err != nil {
			return []byte(`{"error":"encode"}`)
		}
		return out
	})
	c, err := New(NewHandshake(), newTestApp(t, n.Conn()), NewDirect("localhost"))
	require.NoError(t, err)

	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("m-%d-%d", w, i)
				res, err := c.Run(t.Context(), appReq(id, fmt.Sprintf(`{"app":"chat.example.echo","mod":"say","act":"a%d"}`, i)))
				if err != nil {
					errs <- err
					continue
				}
				want := fmt.Sprintf(`{"act":"a%d","id":%q}`, i, id)
				if res.Route != "app" || res.Decision.Kind() != KindReply || string(res.Decision.Replies()[0].GetData()) != want {
					errs <- fmt.Errorf("%s: route %q decided %v: %s", id, res.Route, res.Decision.Kind(), res.Decision.Replies())
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
