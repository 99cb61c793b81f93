package e2e

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bachata-chat/bachata/libs/localsuite"
)

// presenceEvent is the data of a "presence" frame.
type presenceEvent struct {
	User     string `json:"user"`
	Status   string `json:"status"`
	LastSeen int64  `json:"lastSeen"`
}

// nextPresence waits for the next presence event, skipping other frames.
func (c *client) nextPresence() presenceEvent {
	c.t.Helper()
	f := c.expect("a presence event", func(f frame) bool { return f.dataType() == "presence" })
	var ev presenceEvent
	require.NoError(c.t, json.Unmarshal(f.Data, &ev), "presence frame %s", f.raw)
	require.Empty(c.t, f.ID, "presence events carry no id: %s", f.raw)
	return ev
}

func (c *client) subscribePresence(id string, users ...string) {
	c.t.Helper()
	c.send(map[string]any{"id": id, "type": "presence.subscribe", "data": map[string]any{"users": users}})
}

func TestPresenceEventsAcrossGateways(t *testing.T) {
	t.Parallel()
	e := startSuite(t, 2)
	alice := dial(t, e.gw(0), token(t, secret, "alice"), "phone")
	bobTok := token(t, secret, "bob")

	// The current state comes at once: bob has never been seen.
	alice.subscribePresence("p-1", "bob")
	ev := alice.nextPresence()
	require.Equal(t, presenceEvent{User: "@bob@localhost", Status: "offline"}, ev)

	// Bob's devices come and go on the other gateway: alice hears when the
	// first arrives and when the last leaves, and only then.
	phone := dial(t, e.gw(1), bobTok, "phone")
	ev = alice.nextPresence()
	require.Equal(t, "online", ev.Status)
	require.Positive(t, ev.LastSeen)
	laptop := dial(t, e.gw(0), bobTok, "laptop")
	phone.close()
	alice.quiet(1500 * time.Millisecond) // more than the 1 s window: still online
	laptop.close()
	ev = alice.nextPresence()
	require.Equal(t, "offline", ev.Status)

	// Only subscribers hear it: carol, who subscribed to nobody, hears
	// nothing; after unsubscribing, alice neither.
	carol := dial(t, e.gw(1), token(t, secret, "carol"), "phone")
	alice.send(map[string]any{"id": "p-2", "type": "presence.unsubscribe", "data": map[string]any{"users": []string{"@bob@localhost"}}})
	alice.send(map[string]any{"type": 1001})
	alice.expectTransport(1002, "")
	dial(t, e.gw(1), bobTok, "phone")
	alice.quiet(500 * time.Millisecond)
	carol.quiet(300 * time.Millisecond)

	// A bad request gets an error reply and the connection stays.
	alice.send(map[string]any{"id": "p-3", "type": "presence.subscribe", "data": map[string]any{"users": "bob"}})
	f := alice.expect("the error reply", func(f frame) bool { return f.ID == "p-3" })
	require.Equal(t, "presence.subscribe:error", f.dataType())
	require.Equal(t, 4120, f.errCode())
}

func TestPresenceOfAKilledGatewaysUsersGoesOffline(t *testing.T) {
	t.Parallel()
	e := startSuite(t, 2)
	alice := dial(t, e.gw(0), token(t, secret, "alice"), "phone")
	dial(t, e.gw(1), token(t, secret, "bob"), "laptop")
	alice.subscribePresence("p-1", "bob")
	require.Equal(t, "online", alice.nextPresence().Status)

	killed := time.Now()
	e.suite.Kill(e.suite.Gateways()[1])
	ev := alice.nextPresence() // within the lease (9 s) and a sweep
	require.Equal(t, "offline", ev.Status)
	t.Logf("offline event %s after the kill", time.Since(killed).Round(time.Millisecond))
}

func TestFlappingDoesNotFloodSubscribers(t *testing.T) {
	t.Parallel()
	const window = 2 * time.Second
	e := startSuiteWith(t, func(c *localsuite.Config) {
		c.Gateways = 2
		c.Env = append(c.Env, "BACHATA_PRESENCE_COALESCE="+window.String())
	})
	alice := dial(t, e.gw(0), token(t, secret, "alice"), "phone")
	bobTok := token(t, secret, "bob")
	bob := dial(t, e.gw(1), bobTok, "phone")
	alice.subscribePresence("p-1", "bob")
	require.Equal(t, "online", alice.nextPresence().Status)

	// Bob's connection drops and comes back again and again, each time
	// after presence has recorded him offline: ten real changes each way.
	const flaps = 10
	start := time.Now()
	for range flaps {
		bob.drop()
		require.Eventually(t, func() bool {
			_, out := e.admin(t, adminToken, http.MethodGet, "/v1/presence/bob", "")
			return out["online"] == false
		}, waitFor, 5*time.Millisecond)
		bob = dial(t, e.gw(1), bobTok, "phone")
	}
	elapsed := time.Since(start)
	// Each window may carry one event at most, and a window that ends with
	// bob online as he was carries none.
	var events []presenceEvent
	deadline := time.After(elapsed + 2*window)
	for collecting := true; collecting; {
		select {
		case f := <-alice.frames:
			if f.dataType() == "presence" {
				var ev presenceEvent
				require.NoError(t, json.Unmarshal(f.Data, &ev))
				events = append(events, ev)
			}
		case <-deadline:
			collecting = false
		}
	}
	maxEvents := int(elapsed/window) + 2
	t.Logf("%d flaps in %s: %d presence events (at most %d allowed)", flaps, elapsed.Round(time.Millisecond), len(events), maxEvents)
	require.LessOrEqual(t, len(events), maxEvents)
	require.Less(t, len(events), 2*flaps, "not one event per change")
	if len(events) > 0 {
		require.Equal(t, "online", events[len(events)-1].Status, "the last word is bob's state: %v", events)
	}
}

// TestPresenceSurvivesLosingAnInstance: with two presence instances, one
// is killed; the state lives in Redis, so the other answers for it,
// publishes the changes and sweeps the dead gateway.
func TestPresenceSurvivesLosingAnInstance(t *testing.T) {
	t.Parallel()
	e := startSuiteWith(t, func(c *localsuite.Config) {
		c.Gateways = 2
		c.Presences = 2
	})
	bobTok := token(t, secret, "bob")
	dial(t, e.gw(1), bobTok, "laptop").close()
	alice := dial(t, e.gw(0), token(t, secret, "alice"), "phone")
	alice.subscribePresence("p-1", "bob")
	require.Equal(t, "offline", alice.nextPresence().Status)

	e.suite.Kill(e.suite.Instance("presence-1"))
	// Calls in flight to the dead instance fail until the gateways' gRPC
	// balancers see it gone; a refused connection is closed with 1011 and
	// the client connects again, as real clients do.
	var bob *client
	require.Eventually(t, func() bool {
		bob = tryDial(t, e.gw(1), bobTok, "laptop")
		return bob != nil
	}, waitFor, 100*time.Millisecond)
	require.Equal(t, "online", alice.nextPresence().Status)

	e.suite.Kill(e.suite.Gateways()[1])
	require.Equal(t, "offline", alice.nextPresence().Status, "the surviving instance sweeps the dead gateway")
	code, out := e.admin(t, adminToken, http.MethodGet, "/v1/presence/bob", "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, false, out["online"])
}
