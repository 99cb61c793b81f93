package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

// waitFor bounds every wait so a broken suite fails instead of hanging; it
// is a failure deadline, not a performance assertion.
const waitFor = 20 * time.Second

// frame is one JSON frame as a client sees it.
type frame struct {
	ID   string          `json:"id,omitempty"`
	Type json.RawMessage `json:"type"`
	Time int64           `json:"time,omitempty"`
	From string          `json:"from,omitempty"`
	Dest string          `json:"dest,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
	raw  []byte
}

// errCode is the errCode of an error frame's data, or 0.
func (f frame) errCode() int {
	var e struct {
		Code int `json:"errCode"`
	}
	if !strings.HasSuffix(f.dataType(), ":error") || json.Unmarshal(f.Data, &e) != nil {
		return 0
	}
	return e.Code
}

// transport returns the integer type of a transport frame, or 0.
func (f frame) transport() int {
	var n int
	if json.Unmarshal(f.Type, &n) != nil {
		return 0
	}
	return n
}

// dataType returns the string type of a data frame, or "".
func (f frame) dataType() string {
	var s string
	if json.Unmarshal(f.Type, &s) != nil {
		return ""
	}
	return s
}

// dataString returns data as a string (transport frames carry the id there).
func (f frame) dataString() string {
	var s string
	_ = json.Unmarshal(f.Data, &s)
	return s
}

// client is one device's WebSocket connection.
type client struct {
	t      testing.TB
	conn   *websocket.Conn
	frames chan frame
	done   chan struct{}
	// closeErr is why the connection ended, once done is closed.
	closeErr error
	ready    frame
}

func token(t testing.TB, secret, user string) string {
	t.Helper()
	now := time.Now()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject:   user,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
	}).SignedString([]byte(secret))
	require.NoError(t, err)
	return s
}

// dial connects user's device to a gateway and waits for the ready frame.
func dial(t testing.TB, gatewayAddr, tok, device string) *client {
	t.Helper()
	return dialQuery(t, gatewayAddr, tok, url.Values{"device": {device}})
}

// dialQuery is dial with the query of GET /ws given whole.
func dialQuery(t testing.TB, gatewayAddr, tok string, query url.Values) *client {
	t.Helper()
	c, err := connect(t, gatewayAddr, tok, query)
	require.NoError(t, err)
	return c
}

// tryDial is dial for a gateway that may refuse: it returns nil when the
// upgrade is refused or the connection closes before the ready frame.
func tryDial(t testing.TB, gatewayAddr, tok, device string) *client {
	t.Helper()
	c, err := connect(t, gatewayAddr, tok, url.Values{"device": {device}})
	if err != nil {
		t.Logf("dial %s: %v", gatewayAddr, err)
		return nil
	}
	return c
}

// connect opens a connection and waits for the ready frame.
func connect(t testing.TB, gatewayAddr, tok string, query url.Values) (*client, error) {
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	u := url.URL{Scheme: "ws", Host: gatewayAddr, Path: "/ws", RawQuery: query.Encode()}
	conn, resp, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}},
	})
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", u.String(), err)
	}
	conn.SetReadLimit(1 << 20)
	c := &client{t: t, conn: conn, frames: make(chan frame, 1024), done: make(chan struct{})}
	go c.readLoop()
	t.Cleanup(c.close)
	select {
	case c.ready = <-c.frames:
	case <-c.done:
		return nil, fmt.Errorf("closed before the ready frame: %w", c.closeErr)
	case <-ctx.Done():
		c.drop()
		return nil, fmt.Errorf("no ready frame: %w", ctx.Err())
	}
	if c.ready.transport() != 1000 || c.ready.dataString() == "" {
		return nil, fmt.Errorf("first frame must be ready with a session key: %s", c.ready.raw)
	}
	return c, nil
}

func (c *client) readLoop() {
	defer close(c.done)
	for {
		_, b, err := c.conn.Read(context.Background())
		if err != nil {
			c.closeErr = err
			return
		}
		var f frame
		if err := json.Unmarshal(b, &f); err != nil {
			c.t.Errorf("server sent a frame that is not JSON: %q", b)
			return
		}
		f.raw = b
		// Server pings are answered here so they never reach a test.
		if f.transport() == 1001 {
			_ = c.conn.Write(context.Background(), websocket.MessageText, []byte(`{"type":1002}`))
			continue
		}
		c.frames <- f
	}
}

// closedWith waits for the server to close the connection and returns the
// close code and reason.
func (c *client) closedWith() (websocket.StatusCode, string) {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(waitFor):
		c.t.Fatalf("connection still open after %s", waitFor)
	}
	var ce websocket.CloseError
	require.ErrorAs(c.t, c.closeErr, &ce)
	return ce.Code, ce.Reason
}

func (c *client) close() {
	_ = c.conn.Close(websocket.StatusNormalClosure, "bye")
	<-c.done
}

// drop closes the connection without a goodbye, like a lost network.
func (c *client) drop() {
	_ = c.conn.CloseNow()
	<-c.done
}

func (c *client) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	require.NoError(c.t, err)
	c.sendRaw(string(b))
}

func (c *client) sendRaw(s string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(c.t, c.conn.Write(ctx, websocket.MessageText, []byte(s)))
}

func (c *client) direct(id, dest, text string) {
	c.t.Helper()
	c.send(map[string]any{"id": id, "type": "direct", "dest": dest, "data": map[string]string{"text": text}})
}

func (c *client) ack(id string) {
	c.t.Helper()
	c.send(map[string]any{"type": 200, "data": id})
}

// next returns the next frame or fails the test.
func (c *client) next() frame {
	c.t.Helper()
	select {
	case f := <-c.frames:
		return f
	case <-c.done:
		c.t.Fatalf("connection closed while waiting for a frame")
	case <-time.After(waitFor):
		c.t.Fatalf("no frame within %s", waitFor)
	}
	return frame{}
}

// expect returns the next frame and checks it with match, describing what
// was expected when it does not.
func (c *client) expect(what string, match func(frame) bool) frame {
	c.t.Helper()
	f := c.next()
	require.True(c.t, match(f), "want %s, got %s", what, f.raw)
	return f
}

func (c *client) expectTransport(typ int, id string) {
	c.t.Helper()
	c.expect(fmt.Sprintf("transport %d for %q", typ, id), func(f frame) bool {
		return f.transport() == typ && f.dataString() == id
	})
}

func (c *client) expectMessage(id string) frame {
	c.t.Helper()
	return c.expect(fmt.Sprintf("data message %q", id), func(f frame) bool {
		return f.dataType() != "" && f.ID == id
	})
}

// quiet asserts no frame arrives for a short while: used only to show that
// something is NOT delivered twice, never to time anything.
func (c *client) quiet(d time.Duration) {
	c.t.Helper()
	select {
	case f := <-c.frames:
		c.t.Fatalf("unexpected frame %s", f.raw)
	case <-time.After(d):
	}
}

func entity(user string) string { return "@" + strings.ToLower(user) + "@localhost" }
