package traffic

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/bachata-chat/bachata/libs/protocol"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/golang-jwt/jwt/v5"
)

// fakeGateway is a stand-in for a whole suite, enough to test the
// scenarios' accounting: it routes direct and group messages between its
// own connections at once, answers 100 on receipt and 300 on the first
// ack, and refuses every message whose id is refuseID with error 4290.
type fakeGateway struct {
	t        testing.TB
	secret   string
	refuseID string
	// members is the room's members, for group messages.
	members []string

	mu    sync.Mutex
	conns map[string]*fakeConn
	// origin maps "<receiver> <id>" to the sender of a delivery, for its
	// 300; receipted marks those already answered.
	origin    map[string]string
	receipted map[string]bool
}

type fakeConn struct {
	mu sync.Mutex
	w  func([]byte) error
}

func (c *fakeConn) send(p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.w(p)
}

func startFake(t testing.TB, secret string) (*fakeGateway, string) {
	t.Helper()
	f := &fakeGateway{t: t, secret: secret, refuseID: "m5", conns: map[string]*fakeConn{}, origin: map[string]string{}, receipted: map[string]bool{}}
	s := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(s.Close)
	return f, "ws" + strings.TrimPrefix(s.URL, "http") + "/ws"
}

func (f *fakeGateway) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPut {
		f.putMember(w, r)
		return
	}
	var claims jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), &claims,
		func(*jwt.Token) (any, error) { return []byte(f.secret), nil })
	if err != nil {
		http.Error(w, "bad token", http.StatusUnauthorized)
		return
	}
	nc, _, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		return
	}
	defer func() { _ = nc.Close() }()
	user := claims.Subject
	c := &fakeConn{w: func(p []byte) error { return wsutil.WriteServerText(nc, p) }}
	f.mu.Lock()
	f.conns[user] = c
	f.mu.Unlock()
	c.send([]byte(`{"type":1000,"data":"key"}`))
	for {
		p, op, err := wsutil.ReadClientData(nc)
		if err != nil || op == ws.OpClose {
			return
		}
		fr, err := protocol.Decode(p)
		if err != nil {
			continue
		}
		switch m := fr.(type) {
		case *protocol.DataMessage:
			f.route(user, c, m)
		case *protocol.TransportMessage:
			if m.Type == protocol.TransportAck {
				f.ack(user, m.Data)
			}
		}
	}
}

func (f *fakeGateway) route(from string, c *fakeConn, m *protocol.DataMessage) {
	if m.ID == f.refuseID {
		c.send(protocol.AppendData(nil, &protocol.DataMessage{ID: m.ID, Type: m.Type + protocol.ErrorSuffix, Data: []byte(`{"errCode":4290,"errText":"rate","errPayload":{}}`)}))
		return
	}
	dests := []string{m.Dest}
	if m.Type == protocol.TypeGroup {
		dests = nil
		f.mu.Lock()
		for _, u := range f.members {
			if u != from {
				dests = append(dests, u)
			}
		}
		f.mu.Unlock()
	}
	c.send(protocol.AppendTransport(nil, &protocol.TransportMessage{Type: protocol.TransportReceived, Data: m.ID}))
	out := *m
	out.From = "@" + from + "@localhost"
	frame := protocol.AppendData(nil, &out)
	for _, d := range dests {
		f.deliver(from, d, m.ID, frame)
	}
}

func (f *fakeGateway) deliver(from, to, id string, frame []byte) {
	f.mu.Lock()
	f.origin[to+" "+id] = from
	dc := f.conns[to]
	f.mu.Unlock()
	if dc != nil {
		dc.send(frame)
	}
}

func (f *fakeGateway) ack(user, id string) {
	f.mu.Lock()
	from := f.origin[user+" "+id]
	key := from + " " + id
	first := from != "" && !f.receipted[key]
	f.receipted[key] = true
	sc := f.conns[from]
	f.mu.Unlock()
	if first && sc != nil {
		sc.send(protocol.AppendTransport(nil, &protocol.TransportMessage{Type: protocol.TransportDelivered, Data: id}))
	}
}

// putMember is the admin API's PUT /v1/groups/{room}/members/{user}.
func (f *fakeGateway) putMember(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v1/groups/"), "/")
	if len(parts) != 3 || parts[1] != "members" || r.Header.Get("Authorization") != "Bearer "+fakeAdminToken {
		http.Error(w, "no", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.members = append(f.members, parts[2])
	f.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write([]byte(`{"room":"!` + parts[0] + `@localhost","user":"@` + parts[2] + `@localhost","added":true}`))
}

const fakeAdminToken = "fake-admin-token-sixteen"
