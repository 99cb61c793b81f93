package e2e

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

// TestDirectAcrossGateways: alice on gateway 1, bob on gateway 2; the full
// receipt cycle 100 → delivery → 200 → 300, with a forged from replaced by
// alice's entity and the time stamped by the server.
func TestDirectAcrossGateways(t *testing.T) {
	t.Parallel()
	e := startSuite(t, 2)
	alice := dial(t, e.gw(0), token(t, secret, "alice"), "phone")
	bob := dial(t, e.gw(1), token(t, secret, "bob"), "laptop")

	before := time.Now().UnixMilli()
	alice.send(map[string]any{
		"id": "m1", "type": "direct", "dest": "@bob@localhost",
		"from": "@mallory@localhost", "time": 1, "data": map[string]string{"text": "hi bob"},
	})
	alice.expectTransport(100, "m1")

	got := bob.expectMessage("m1")
	require.Equal(t, "direct", got.dataType())
	require.Equal(t, entity("alice"), got.From, "from is set by the server, never trusted from the client")
	require.Equal(t, "@bob@localhost", got.Dest)
	require.GreaterOrEqual(t, got.Time, before, "time is stamped by the server")
	require.JSONEq(t, `{"text":"hi bob"}`, string(got.Data))

	bob.ack("m1")
	alice.expectTransport(300, "m1")
	alice.quiet(300 * time.Millisecond)
	bob.quiet(300 * time.Millisecond)
}

// TestOfflineRecipientGetsMessageOnConnect: bob is known (connected once)
// but offline when alice sends; the 100 comes at once, the message when bob
// connects, and the 300 after his ack.
func TestOfflineRecipientGetsMessageOnConnect(t *testing.T) {
	t.Parallel()
	e := startSuite(t, 2)
	bobTok := token(t, secret, "bob")
	bob := dial(t, e.gw(1), bobTok, "laptop")
	bob.close()

	alice := dial(t, e.gw(0), token(t, secret, "alice"), "phone")
	alice.direct("m-offline", "bob", "are you there?")
	alice.expectTransport(100, "m-offline")

	bob = dial(t, e.gw(0), bobTok, "laptop") // any gateway will do
	bob.expectMessage("m-offline")
	bob.ack("m-offline")
	alice.expectTransport(300, "m-offline")
}

// TestUnackedMessageRedeliveredOnReconnect: a message delivered but not
// acked comes again after the device reconnects, and the sender gets
// exactly one 300.
func TestUnackedMessageRedeliveredOnReconnect(t *testing.T) {
	t.Parallel()
	e := startSuite(t, 2)
	bobTok := token(t, secret, "bob")
	alice := dial(t, e.gw(0), token(t, secret, "alice"), "phone")
	bob := dial(t, e.gw(1), bobTok, "laptop")

	alice.direct("m-unacked", "bob", "ack me later")
	alice.expectTransport(100, "m-unacked")
	bob.expectMessage("m-unacked")
	bob.drop() // gone without acking

	bob = dial(t, e.gw(1), bobTok, "laptop")
	bob.expectMessage("m-unacked")
	bob.ack("m-unacked")
	alice.expectTransport(300, "m-unacked")
	alice.quiet(500 * time.Millisecond)
}

// TestResentIDDeliveredOnce: resending an accepted id gets 100 again and is
// not delivered twice.
func TestResentIDDeliveredOnce(t *testing.T) {
	t.Parallel()
	e := startSuite(t, 1)
	alice := dial(t, e.gw(0), token(t, secret, "alice"), "phone")
	bob := dial(t, e.gw(0), token(t, secret, "bob"), "laptop")

	alice.direct("m-dup", "bob", "once")
	alice.expectTransport(100, "m-dup")
	alice.direct("m-dup", "bob", "once")
	alice.expectTransport(100, "m-dup")

	bob.expectMessage("m-dup")
	bob.ack("m-dup")
	alice.expectTransport(300, "m-dup")
	bob.quiet(500 * time.Millisecond)
}

// TestBadFramesGetErrorsAndConnectionStays: not-JSON and unknown types are
// answered with :error envelopes and the connection keeps working.
func TestBadFramesGetErrorsAndConnectionStays(t *testing.T) {
	t.Parallel()
	e := startSuite(t, 1)
	alice := dial(t, e.gw(0), token(t, secret, "alice"), "phone")

	alice.sendRaw(`not json`)
	f := alice.next()
	require.Equal(t, "error", f.dataType(), "got %s", f.raw)

	alice.send(map[string]any{"id": "u1", "type": "no-such-type", "data": map[string]any{}})
	f = alice.expectMessage("u1")
	require.Equal(t, "no-such-type:error", f.dataType())
	var body struct {
		ErrCode int             `json:"errCode"`
		ErrText string          `json:"errText"`
		Payload json.RawMessage `json:"errPayload"`
	}
	require.NoError(t, json.Unmarshal(f.Data, &body))
	require.Equal(t, 4100, body.ErrCode)
	require.NotEmpty(t, body.ErrText)

	alice.send(map[string]any{"type": 1001})
	alice.expect("pong", func(f frame) bool { return f.transport() == 1002 })
}

// TestSendersOtherDevicesGetACopy: what alice sends from her phone reaches
// her laptop too, never the phone itself; the copy's ack yields no 300.
func TestSendersOtherDevicesGetACopy(t *testing.T) {
	t.Parallel()
	e := startSuite(t, 2)
	aliceTok := token(t, secret, "alice")
	phone := dial(t, e.gw(0), aliceTok, "phone")
	laptop := dial(t, e.gw(1), aliceTok, "laptop")
	bob := dial(t, e.gw(0), token(t, secret, "bob"), "desk")

	phone.direct("m-copy", "bob", "seen on every device of mine")
	phone.expectTransport(100, "m-copy")
	c := laptop.expectMessage("m-copy")
	require.Equal(t, entity("alice"), c.From)
	laptop.ack("m-copy")
	bob.expectMessage("m-copy")
	bob.ack("m-copy")
	phone.expectTransport(300, "m-copy")
	phone.quiet(500 * time.Millisecond)
	laptop.quiet(300 * time.Millisecond)
}

// TestTypingReachesOnlyOnlineDevicesAndIsNeverQueued: an ephemeral type
// goes to the devices online now, with no 100 and no 300, and a device that
// connects later never gets it.
func TestTypingReachesOnlyOnlineDevicesAndIsNeverQueued(t *testing.T) {
	t.Parallel()
	e := startSuite(t, 2)
	alice := dial(t, e.gw(0), token(t, secret, "alice"), "phone")
	bobTok := token(t, secret, "bob")
	bob := dial(t, e.gw(1), bobTok, "laptop")
	dial(t, e.gw(1), bobTok, "tablet").close() // a known device, offline

	alice.send(map[string]any{"id": "t1", "type": "typing", "dest": "bob", "data": map[string]bool{"typing": true}})
	f := bob.expect("the typing message", func(f frame) bool { return f.dataType() == "typing" && f.ID == "t1" })
	require.Equal(t, entity("alice"), f.From)
	alice.quiet(500 * time.Millisecond) // no 100, no 300

	tablet := dial(t, e.gw(0), bobTok, "tablet")
	tablet.quiet(500 * time.Millisecond)

	// Direct messages still queue behind it as usual.
	alice.direct("m1", "bob", "after typing")
	alice.expectTransport(100, "m1")
	bob.expectMessage("m1")
	tablet.expectMessage("m1")
}

// TestAppContentReachesItsBackendAndTheReplyComesBack: customized content
// goes to the NATS subject of its app/mod/act; the backend's answer comes
// back as an "app" message with the same id; no backend gives 4110.
func TestAppContentReachesItsBackendAndTheReplyComesBack(t *testing.T) {
	t.Parallel()
	e := startSuite(t, 1)
	nc := e.nats.Conn()
	sub, err := nc.Subscribe("bachata.app.chat_example_echo.bottle.throw", func(m *nats.Msg) {
		var req struct {
			ID    string          `json:"id"`
			From  string          `json:"from"`
			Extra json.RawMessage `json:"extra"`
		}
		if err := json.Unmarshal(m.Data, &req); err != nil {
			t.Errorf("backend got %s: %v", m.Data, err)
			return
		}
		reply, _ := json.Marshal(map[string]any{"caught": req.Extra, "by": req.From, "id": req.ID})
		_ = m.Respond(reply)
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	alice := dial(t, e.gw(0), token(t, secret, "alice"), "phone")
	alice.send(map[string]any{"id": "a1", "type": "app", "data": map[string]any{
		"app": "chat.example.echo", "mod": "bottle", "act": "throw", "extra": map[string]string{"text": "hello sea"},
	}})
	f := alice.expect("the backend's reply", func(f frame) bool { return f.dataType() == "app" && f.ID == "a1" })
	require.JSONEq(t, `{"caught":{"text":"hello sea"},"by":"@alice@localhost","id":"a1"}`, string(f.Data))

	alice.send(map[string]any{"id": "a2", "type": "app", "data": map[string]any{"app": "chat.nobody", "mod": "m", "act": "a"}})
	f = alice.expect("no backend", func(f frame) bool { return f.dataType() == "app:error" && f.ID == "a2" })
	require.Equal(t, 4110, f.errCode())
	alice.quiet(300 * time.Millisecond)
}

// TestServerMessageThroughTheAdminAPI: POST /v1/messages on a gateway's
// admin listener routes a system message through the chain; it is queued
// like any other and has no from.
func TestServerMessageThroughTheAdminAPI(t *testing.T) {
	t.Parallel()
	e := startSuite(t, 1)
	bob := dial(t, e.gw(0), token(t, secret, "bob"), "laptop")
	post := func(tok, body string) (int, map[string]any) {
		return e.admin(t, tok, http.MethodPost, "/v1/messages", body)
	}

	code, out := post(adminToken, `{"id":"sys-1","type":"direct","dest":"bob","data":{"text":"maintenance at noon"}}`)
	require.Equal(t, http.StatusOK, code, "%v", out)
	require.Equal(t, "queued", out["outcome"])
	f := bob.expectMessage("sys-1")
	require.Empty(t, f.From, "a system message has no from")
	bob.ack("sys-1")

	code, _ = post("wrong-token", `{"type":"direct","dest":"bob"}`)
	require.Equal(t, http.StatusUnauthorized, code)
	code, out = post(adminToken, `{"type":"nope","dest":"bob"}`)
	require.Equal(t, http.StatusUnprocessableEntity, code)
	require.InDelta(t, 4100, out["errCode"], 0)
	bob.quiet(300 * time.Millisecond)
}

// TestGroupFansOutToMembersWithOne300: members are managed on the admin
// API; a group message reaches every member's devices but the sending one,
// the sender's 300 comes once, and a non-member is refused with 4102.
func TestGroupFansOutToMembersWithOne300(t *testing.T) {
	t.Parallel()
	e := startSuite(t, 2)
	for _, u := range []string{"alice", "bob", "carol"} {
		code, out := e.admin(t, adminToken, http.MethodPut, "/v1/groups/general/members/"+u, "")
		require.Equal(t, http.StatusCreated, code, "%s: %v", u, out)
	}
	aliceTok := token(t, secret, "alice")
	phone := dial(t, e.gw(0), aliceTok, "phone")
	laptop := dial(t, e.gw(1), aliceTok, "laptop")
	bob := dial(t, e.gw(1), token(t, secret, "bob"), "desk")
	carol := dial(t, e.gw(0), token(t, secret, "carol"), "tablet")
	mallory := dial(t, e.gw(0), token(t, secret, "mallory"), "pc")

	phone.send(map[string]any{"id": "g1", "type": "group", "dest": "!general@localhost", "data": map[string]string{"text": "hello all"}})
	phone.expectTransport(100, "g1")
	for _, c := range []*client{laptop, bob, carol} {
		f := c.expectMessage("g1")
		require.Equal(t, entity("alice"), f.From)
		require.Equal(t, "!general@localhost", f.Dest)
	}
	laptop.ack("g1")
	bob.ack("g1")
	carol.ack("g1")
	phone.expectTransport(300, "g1")
	phone.quiet(500 * time.Millisecond)

	mallory.send(map[string]any{"id": "g2", "type": "group", "dest": "!general@localhost", "data": map[string]string{"text": "let me in"}})
	f := mallory.expect("not a member", func(f frame) bool { return f.dataType() == "group:error" && f.ID == "g2" })
	require.Equal(t, 4102, f.errCode())
	bob.quiet(300 * time.Millisecond)
}
