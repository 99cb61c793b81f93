package e2e

import (
	"encoding/json"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSessionResumesOnAnotherGateway(t *testing.T) {
	t.Parallel()
	e := startSuite(t, 2)
	tok := token(t, secret, "alice")

	first := dial(t, e.gw(0), tok, "phone")
	key := first.ready.dataString()
	first.handshake(key, "DIM!", key)
	first.close()

	// The key issued by gateway 0 resumes on gateway 1: the ready frame
	// carries it again and the DIMP handshake accepts it.
	resumed := dialQuery(t, e.gw(1), tok, url.Values{"device": {"phone"}, "session": {key}})
	require.Equal(t, key, resumed.ready.dataString())
	resumed.handshake(key, "DIM!", key)
	resumed.close()

	// Another device of the same user cannot take it over.
	laptop := dialQuery(t, e.gw(1), tok, url.Values{"device": {"laptop"}, "session": {key}})
	require.NotEqual(t, key, laptop.ready.dataString())
	laptop.handshake(key, "DIM?", laptop.ready.dataString())

	// A connection that presents nothing gets a new session, and the old
	// key is gone: presenting it now is answered with a new one.
	fresh := dial(t, e.gw(0), tok, "phone")
	newKey := fresh.ready.dataString()
	require.NotEqual(t, key, newKey)
	fresh.handshake(key, "DIM?", newKey)
	fresh.close()
	stale := dialQuery(t, e.gw(1), tok, url.Values{"device": {"phone"}, "session": {key}})
	require.NotEqual(t, key, stale.ready.dataString())
	require.NotEqual(t, newKey, stale.ready.dataString())
}

// handshake sends the DIMP hello with session and expects the answer
// title and key.
func (c *client) handshake(session, wantTitle, wantKey string) {
	c.t.Helper()
	id := "hello-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	c.send(map[string]any{"id": id, "type": "handshake", "data": map[string]string{"title": "Hello world!", "session": session}})
	f := c.expect("handshake answer "+id, func(f frame) bool { return f.ID == id })
	require.Equal(c.t, "handshake", f.dataType(), "answer: %s", f.raw)
	var body struct{ Title, Session string }
	require.NoError(c.t, json.Unmarshal(f.Data, &body), "answer: %s", f.raw)
	require.Equal(c.t, wantTitle, body.Title, "answer: %s", f.raw)
	require.Equal(c.t, wantKey, body.Session, "answer: %s", f.raw)
}
