package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/bachata-chat/bachata/libs/localsuite"
)

// The traffic of TestGatewayDrainUnderTraffic: drainPairs senders each send
// drainPerPair numbered direct messages to a receiver of their own, with at
// most drainWindow of them unanswered (no 100 yet) at a time.
const (
	drainPairs   = 20
	drainPerPair = 200
	drainWindow  = 8
)

// TestGatewayDrainUnderTraffic is a rolling restart under traffic: each of
// the two gateways in turn gets SIGTERM while senders and receivers spread
// over both are busy, and is started again. On SIGTERM a gateway turns
// /readyz to 503, stops accepting, closes every socket with 1012 so the
// clients reconnect to the other gateway, and tells presence its devices
// are gone before it exits. Clients behave as the protocol asks: a sender
// resends every message without its 100 after reconnecting, a receiver
// acks what it gets. At the end every message that got a 100 was
// delivered, in order per sender and receiver, and got its 300;
// retransmissions after a reconnect are counted, not failed.
func TestGatewayDrainUnderTraffic(t *testing.T) {
	t.Parallel()
	e := startSuiteWith(t, func(c *localsuite.Config) {
		c.Gateways = 2
		// The senders go as fast as the suite lets them; the rate limit
		// has tests of its own.
		c.Env = append(c.Env, "BACHATA_RATE_LIMIT=0")
	})
	gws := e.suite.Gateways()
	r := newDrainRun(t, e)
	ctx, cancel := context.WithCancel(t.Context())
	var workers sync.WaitGroup
	defer func() { cancel(); workers.Wait() }()

	// Receivers first, so every message has a known device to go to; pair
	// i's sender and receiver sit on different gateways.
	for i, c := range r.receivers {
		c.next = (i + 1) % 2
		workers.Go(func() { r.receive(ctx, i) })
	}
	r.await("every receiver connected", func() bool { return r.connected == drainPairs })
	for i, c := range r.senders {
		c.next = i % 2
		workers.Go(func() { r.send(ctx, i) })
	}

	total := drainPairs * drainPerPair
	r.await("a quarter of the messages accepted", func() bool { return r.acceptedCount() >= total/4 })
	r.drainGateway(ctx, gws, 0, 0)
	r.await("five eighths accepted, every client connected", func() bool {
		return r.acceptedCount() >= total*5/8 && r.connected == 2*drainPairs
	})
	r.drainGateway(ctx, gws, 1, 1)

	r.await("every message accepted", func() bool { return r.acceptedCount() == total })
	r.await("every accepted message delivered", func() bool { return r.deliveredCount() == total })
	r.await("every 300", func() bool { return r.receiptCount() == total })
	cancel()
	workers.Wait()
	r.check()
}

// drainRun is the clients of one drain test and what they saw.
type drainRun struct {
	t *testing.T
	e *env
	// gates hold the senders at a sequence number until a gateway is being
	// drained, so there are always messages in flight when SIGTERM comes.
	gates [2]drainGate

	senders, receivers []*drainClient

	// mu guards the fields below; changed is closed and replaced on every
	// change, so await wakes up on events instead of polling.
	mu                sync.Mutex
	changed           chan struct{}
	connected         int // connections open and ready
	dials             int // connections made, first ones included
	sent, resent      int
	accepted          []map[int]bool // per sender: sequence numbers with a 100
	receipts          []map[int]int  // per sender: 300s per sequence number
	delivered         []map[int]int  // per receiver: deliveries per sequence number
	firstSeen         [][]int        // per receiver: sequence numbers as first delivered
	nDelivered, n300s int            // unique counts, kept for await
	problems          []string       // error frames and anything unexpected
}

// drainGate holds senders before sequence number at until open is closed.
type drainGate struct {
	at   int
	open chan struct{}
}

// drainClient is one user's device that reconnects when it loses its
// socket.
type drainClient struct {
	user, tok string
	// next is the gateway to try first; only the client's worker touches
	// it.
	next int
	// cur is the connection in use, nil between connections; guarded by
	// drainRun.mu.
	cur *drainConn
}

// drainConn is one WebSocket connection of a drainClient. Its reader
// passes frames on until the connection ends, then records the close code
// and closes frames and ended.
type drainConn struct {
	gw     int
	ws     *websocket.Conn
	frames chan frame
	ended  chan struct{}
	code   websocket.StatusCode // valid once ended is closed
}

func newDrainRun(t *testing.T, e *env) *drainRun {
	r := &drainRun{
		t:       t,
		e:       e,
		changed: make(chan struct{}),
		gates: [2]drainGate{
			{at: drainPerPair / 2, open: make(chan struct{})},
			{at: drainPerPair * 3 / 4, open: make(chan struct{})},
		},
		accepted:  make([]map[int]bool, drainPairs),
		receipts:  make([]map[int]int, drainPairs),
		delivered: make([]map[int]int, drainPairs),
		firstSeen: make([][]int, drainPairs),
	}
	for i := range drainPairs {
		s, rc := fmt.Sprintf("sender%02d", i), fmt.Sprintf("receiver%02d", i)
		r.senders = append(r.senders, &drainClient{user: s, tok: token(t, secret, s)})
		r.receivers = append(r.receivers, &drainClient{user: rc, tok: token(t, secret, rc)})
		r.accepted[i], r.receipts[i], r.delivered[i] = map[int]bool{}, map[int]int{}, map[int]int{}
	}
	return r
}

// update changes the shared state under the lock and wakes every await.
func (r *drainRun) update(fn func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn()
	close(r.changed)
	r.changed = make(chan struct{})
}

// problem records something a client saw that should not happen; check
// fails the test with it.
func (r *drainRun) problem(format string, args ...any) {
	r.update(func() { r.problems = append(r.problems, fmt.Sprintf(format, args...)) })
}

// await waits until cond holds, checked under the lock after every
// change. It fails the test when nothing changed for waitFor: the bound
// catches a stall, it does not time the traffic.
func (r *drainRun) await(what string, cond func() bool) {
	r.t.Helper()
	stall := time.NewTimer(waitFor)
	defer stall.Stop()
	for {
		r.mu.Lock()
		ok, changed := cond(), r.changed
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
			stall.Reset(waitFor)
		case <-stall.C:
			r.t.Fatalf("waiting for %s: nothing happened for %s; %s", what, waitFor, r.summary())
		}
	}
}

// acceptedCount, deliveredCount and receiptCount are the unique 100s,
// deliveries and 300s; call them with mu held.
func (r *drainRun) acceptedCount() int {
	n := 0
	for _, a := range r.accepted {
		n += len(a)
	}
	return n
}

func (r *drainRun) deliveredCount() int { return r.nDelivered }
func (r *drainRun) receiptCount() int   { return r.n300s }

// drainGateway sends SIGTERM to gateway idx while traffic runs, opens gate
// so the senders go on meanwhile, checks what a client, a load balancer
// and presence see of the drain, and starts the gateway again.
func (r *drainRun) drainGateway(ctx context.Context, gws []*localsuite.Instance, idx, gate int) {
	t := r.t
	t.Helper()
	gw, other := gws[idx], gws[1-idx]
	require.Equal(t, http.StatusOK, drainReadyz(t, gw), "%s ready before the drain", gw.Name)

	// A client that never reads holds the drain open: the gateway waits
	// for its close frame up to the close grace (2s), which makes the
	// draining state observable without racing it.
	silentUser := fmt.Sprintf("silent%d", idx)
	silent, err := dialDrain(ctx, gw.Addr, token(t, secret, silentUser), "d")
	require.NoError(t, err)
	defer func() { _ = silent.CloseNow() }()

	var onIt []*drainConn
	r.mu.Lock()
	for _, c := range append(slices.Clone(r.senders), r.receivers...) {
		if c.cur != nil && c.cur.gw == idx {
			onIt = append(onIt, c.cur)
		}
	}
	r.mu.Unlock()
	require.NotEmpty(t, onIt)

	close(r.gates[gate].open)
	terminated := make(chan struct{})
	go func() { defer close(terminated); r.e.suite.Terminate(gw) }()

	// While it drains, probes see it not ready and new clients are
	// refused (503 during the drain, connection refused once the listener
	// is closed).
	drainPoll(t, terminated, gw.Name+" /readyz 503 while draining", func() bool {
		return drainReadyz(t, gw) == http.StatusServiceUnavailable
	})
	drainPoll(t, terminated, gw.Name+" refusing new connections while draining", func() bool {
		c, err := dialDrain(ctx, gw.Addr, token(t, secret, silentUser), "probe")
		if err == nil {
			_ = c.CloseNow()
		}
		return err != nil
	})
	select {
	case <-terminated:
	case <-time.After(2 * waitFor):
		t.Fatalf("%s still running %s after SIGTERM", gw.Name, 2*waitFor)
	}

	for _, c := range onIt {
		select {
		case <-c.ended:
		case <-time.After(waitFor):
			t.Fatalf("a connection to %s still open after it exited", gw.Name)
		}
		require.Equal(t, websocket.StatusServiceRestart, c.code, "close code of a connection to the drained %s", gw.Name)
	}
	rctx, rcancel := context.WithTimeout(ctx, waitFor)
	_, _, err = silent.Read(rctx)
	rcancel()
	require.Equal(t, websocket.StatusServiceRestart, websocket.CloseStatus(err), "the silent client's close: %v", err)

	// Every close path ran before the gateway exited: presence has no
	// device on it, though its lease has not run out yet. A client that
	// has reconnected meanwhile is online on the other gateway: a late
	// Disconnect of its old connection did not take that away.
	online := map[string]string{silentUser: ""}
	r.mu.Lock()
	for _, c := range append(slices.Clone(r.senders), r.receivers...) {
		online[c.user] = ""
		if c.cur != nil {
			online[c.user] = gws[c.cur.gw].GatewayID
		}
	}
	r.mu.Unlock()
	for u, want := range online {
		devices := drainPresence(t, other, u)
		for _, d := range devices {
			require.NotEqual(t, gw.GatewayID, d.Gateway, "%s's device %s still online on the drained %s", u, d.Device, gw.Name)
		}
		if want != "" {
			require.Contains(t, devices, drainPresenceDevice{Device: "d", Gateway: want}, "%s connected to %s", u, want)
		}
	}
	t.Logf("drained %s: %d client connections closed with 1012, /readyz 503 and new connections refused while draining, presence released",
		gw.Name, len(onIt)+1)

	require.NoError(t, r.e.suite.Restart(ctx, gw))
}

// drainPoll checks cond every few milliseconds until it holds, failing if
// the gateway exited (terminated closed) first. The probes have no event
// to wait for; the drain window they run in is held open by a silent
// client, so they cannot miss it.
func drainPoll(t *testing.T, terminated <-chan struct{}, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-terminated:
			t.Fatalf("gateway exited before %s", what)
		case <-tick.C:
		}
	}
}

// drainReadyz is the status of an instance's /readyz, or 0 if it did not answer.
func drainReadyz(t *testing.T, in *localsuite.Instance) int {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+in.HTTPAddr+"/readyz", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// drainPresenceDevice is a device in a GET /v1/presence/{user} answer.
type drainPresenceDevice struct {
	Device  string `json:"device"`
	Gateway string `json:"gateway"`
}

// drainPresence asks gateway in's admin API which devices of user are
// online.
func drainPresence(t *testing.T, in *localsuite.Instance, user string) []drainPresenceDevice {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+in.HTTPAddr+"/v1/presence/"+user, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode, "presence of %s", user)
	var out struct {
		Devices []drainPresenceDevice `json:"devices"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out.Devices
}

// dialDrain connects a device and reads the ready frame. Unlike dial it
// runs on any goroutine and returns its error, and it reads nothing after
// the ready frame.
func dialDrain(ctx context.Context, addr, tok, device string) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	u := url.URL{Scheme: "ws", Host: addr, Path: "/ws", RawQuery: url.Values{"device": {device}}.Encode()}
	conn, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}},
	})
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	conn.SetReadLimit(1 << 20)
	_, b, err := conn.Read(ctx)
	if err != nil {
		_ = conn.CloseNow()
		return nil, fmt.Errorf("read ready from %s: %w", addr, err)
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil || f.transport() != 1000 {
		_ = conn.CloseNow()
		return nil, fmt.Errorf("first frame from %s is not ready: %s", addr, b)
	}
	return conn, nil
}

// connect connects c to a gateway, the one it prefers first, else the
// other (one being drained or restarted refuses), until it gets in or ctx
// ends (nil then).
func (r *drainRun) connect(ctx context.Context, c *drainClient) *drainConn {
	gws := r.e.suite.Gateways()
	for attempt := 1; ; attempt++ {
		gw := c.next
		ws, err := dialDrain(ctx, gws[gw].Addr, c.tok, "d")
		if err == nil {
			conn := &drainConn{gw: gw, ws: ws, frames: make(chan frame, 64), ended: make(chan struct{})}
			r.update(func() { c.cur = conn; r.connected++; r.dials++ })
			go r.read(ctx, conn)
			return conn
		}
		c.next = 1 - gw
		if attempt%2 == 0 {
			// Both refused: one is restarting, the other draining or not
			// ready yet. Back off a little, as a client would.
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// read passes conn's frames on until it ends.
func (r *drainRun) read(ctx context.Context, conn *drainConn) {
	defer close(conn.ended)
	defer close(conn.frames)
	for {
		_, b, err := conn.ws.Read(ctx)
		if err != nil {
			conn.code = websocket.CloseStatus(err)
			return
		}
		var f frame
		if err := json.Unmarshal(b, &f); err != nil {
			r.problem("a frame that is not JSON: %q", b)
			continue
		}
		f.raw = b
		select {
		case conn.frames <- f:
		case <-ctx.Done():
			conn.code = -1
			return
		}
	}
}

// ended marks c between connections and sets it to try the other gateway
// first.
func (r *drainRun) ended(c *drainClient, conn *drainConn) {
	_ = conn.ws.CloseNow()
	for range conn.frames { // wait for the reader
	}
	c.next = 1 - conn.gw
	r.update(func() { c.cur = nil; r.connected-- })
}

// write sends v on conn; false when the connection failed, which the
// reader then notices too.
func (r *drainRun) write(ctx context.Context, conn *drainConn, v any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		r.problem("encode %v: %v", v, err)
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := conn.ws.Write(ctx, websocket.MessageText, b); err != nil {
		_ = conn.ws.CloseNow()
		return false
	}
	return true
}

func drainID(pair, seq int) string { return fmt.Sprintf("p%02d-%04d", pair, seq) }

// parseDrainID is drainID reversed; ok is false for another id.
func parseDrainID(id string) (pair, seq int, ok bool) {
	p, s, found := strings.Cut(strings.TrimPrefix(id, "p"), "-")
	pair, err1 := strconv.Atoi(p)
	seq, err2 := strconv.Atoi(s)
	return pair, seq, found && err1 == nil && err2 == nil && strings.HasPrefix(id, "p")
}

// gate is the channel a sender about to send seq waits on, or nil.
func (r *drainRun) gate(seq int) chan struct{} {
	for _, g := range r.gates {
		if seq < g.at {
			return nil
		}
		select {
		case <-g.open:
		default:
			return g.open
		}
	}
	return nil
}

// send is sender i: it sends its numbered messages with at most
// drainWindow unanswered, and after a reconnect resends every one that
// has no 100 yet, in order. It keeps reading 300s until ctx ends.
func (r *drainRun) send(ctx context.Context, i int) {
	c := r.senders[i]
	dest := r.receivers[i].user
	var unanswered []int // sent, no 100 yet, in order
	next := 0
	message := func(seq int) map[string]any {
		return map[string]any{"id": drainID(i, seq), "type": "direct", "dest": dest, "data": map[string]any{"seq": seq}}
	}
	for {
		conn := r.connect(ctx, c)
		if conn == nil {
			return
		}
		ok := true
		for _, seq := range unanswered {
			if ok = r.write(ctx, conn, message(seq)); !ok {
				break
			}
			r.update(func() { r.sent++; r.resent++ })
		}
		for open := true; open; {
			for ok && len(unanswered) < drainWindow && next < drainPerPair && r.gate(next) == nil {
				unanswered = append(unanswered, next)
				ok = r.write(ctx, conn, message(next))
				next++
				if ok {
					r.update(func() { r.sent++ })
				}
			}
			var gate chan struct{}
			if ok && len(unanswered) < drainWindow && next < drainPerPair {
				gate = r.gate(next)
			}
			select {
			case f, more := <-conn.frames:
				if !more {
					open = false
					break
				}
				switch f.transport() {
				case 100:
					unanswered = r.accept(i, f.dataString(), unanswered)
				case 300:
					r.receipt(i, f.dataString())
				case 1001:
					ok = ok && r.write(ctx, conn, map[string]int{"type": 1002})
				default:
					// An error may leave later messages accepted before
					// this one, so it fails the test; reconnecting
					// resends it.
					r.problem("%s got %s", c.user, f.raw)
					_ = conn.ws.CloseNow()
				}
			case <-gate:
			case <-ctx.Done():
				r.ended(c, conn)
				return
			}
		}
		r.ended(c, conn)
	}
}

// accept records a 100 for sender i and returns unanswered without its id.
func (r *drainRun) accept(i int, id string, unanswered []int) []int {
	pair, seq, ok := parseDrainID(id)
	if !ok || pair != i {
		r.problem("sender %d got a 100 for %q", i, id)
		return unanswered
	}
	r.update(func() { r.accepted[i][seq] = true })
	return slices.DeleteFunc(unanswered, func(s int) bool { return s == seq })
}

// receipt records a 300 for sender i.
func (r *drainRun) receipt(i int, id string) {
	pair, seq, ok := parseDrainID(id)
	if !ok || pair != i {
		r.problem("sender %d got a 300 for %q", i, id)
		return
	}
	r.update(func() {
		if r.receipts[i][seq] == 0 {
			r.n300s++
		}
		r.receipts[i][seq]++
	})
}

// receive is receiver i: it records and acks every message it gets,
// reconnecting when its socket closes, until ctx ends.
func (r *drainRun) receive(ctx context.Context, i int) {
	c := r.receivers[i]
	from := entity(r.senders[i].user)
	for {
		conn := r.connect(ctx, c)
		if conn == nil {
			return
		}
		ok := true
		for f := range conn.frames {
			switch {
			case f.transport() == 1001:
				ok = ok && r.write(ctx, conn, map[string]int{"type": 1002})
			case f.dataType() == "direct":
				pair, seq, valid := parseDrainID(f.ID)
				if !valid || pair != i || f.From != from {
					r.problem("%s got %s", c.user, f.raw)
					continue
				}
				r.update(func() {
					if r.delivered[i][seq] == 0 {
						r.nDelivered++
						r.firstSeen[i] = append(r.firstSeen[i], seq)
					}
					r.delivered[i][seq]++
				})
				ok = ok && r.write(ctx, conn, map[string]any{"type": 200, "data": f.ID})
			default:
				r.problem("%s got %s", c.user, f.raw)
			}
		}
		r.ended(c, conn)
	}
}

// summary is one line of counts; call it without mu held.
func (r *drainRun) summary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	accepted, dups, lost, receipts300 := 0, 0, 0, 0
	for i := range drainPairs {
		accepted += len(r.accepted[i])
		for seq := range r.accepted[i] {
			if r.delivered[i][seq] == 0 {
				lost++
			}
		}
		for _, n := range r.delivered[i] {
			dups += n - 1
		}
		for _, n := range r.receipts[i] {
			receipts300 += n
		}
	}
	return fmt.Sprintf("sent %d (%d resent), accepted %d, delivered unique %d, duplicates %d, lost %d, 300s %d (unique %d), reconnects %d",
		r.sent, r.resent, accepted, r.nDelivered, dups, lost, receipts300, r.n300s, r.dials-2*drainPairs)
}

// check fails the test for a lost message, a message out of order or
// anything unexpected, and logs the counts.
func (r *drainRun) check() {
	t := r.t
	t.Helper()
	t.Logf("drain summary: %s", r.summary())
	r.mu.Lock()
	defer r.mu.Unlock()
	require.Empty(t, r.problems)
	for i := range drainPairs {
		for seq := range r.accepted[i] {
			require.Positive(t, r.delivered[i][seq], "message %s accepted, never delivered", drainID(i, seq))
		}
		require.True(t, slices.IsSorted(r.firstSeen[i]), "pair %d: first deliveries out of order: %v", i, r.firstSeen[i])
		require.Len(t, r.firstSeen[i], drainPerPair, "pair %d", i)
	}
}
