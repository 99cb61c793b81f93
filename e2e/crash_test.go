package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestNothingAcceptedIsLostWhenProcessesAreKilled: every message that got
// its 100 reaches the offline recipient, in order, with one 300 each,
// although the delivery service, the router and Redis were each killed
// with SIGKILL in between.
func TestNothingAcceptedIsLostWhenProcessesAreKilled(t *testing.T) {
	t.Parallel()
	e := startSuite(t, 2)
	alice := dial(t, e.gw(0), token(t, secret, "alice"), "phone")
	// Bob registers his device once, then goes offline.
	bobTok := token(t, secret, "bob")
	dial(t, e.gw(1), bobTok, "laptop").close()

	var ids []string
	// send does what a client does: it resends the same id after a
	// retryable error (a peer still reconnecting) until it gets the 100.
	send := func(n int) {
		for range n {
			id := fmt.Sprintf("m%02d", len(ids))
			for attempt := 0; ; attempt++ {
				require.Less(t, attempt, 50, "message %s never accepted", id)
				alice.direct(id, "bob", "survives "+id)
				f := alice.next()
				if f.transport() == 100 && f.dataString() == id {
					break
				}
				require.True(t, f.errCode() >= 5000, "want 100 or a retryable error, got %s", f.raw)
				time.Sleep(100 * time.Millisecond)
			}
			ids = append(ids, id)
		}
	}
	restart := func(name string) {
		in := e.suite.Instance(name)
		require.NotNil(t, in, name)
		e.suite.Kill(in)
		require.NoError(t, e.suite.Restart(t.Context(), in))
	}

	send(3)
	restart("delivery-1")
	send(3)
	restart("router-1")
	send(3)
	e.redis.Kill()
	e.redis.Restart()
	send(3)

	bob := dial(t, e.gw(1), bobTok, "laptop")
	for _, id := range ids {
		bob.expectMessage(id)
		bob.ack(id)
	}
	for range ids {
		alice.expect("a 300", func(f frame) bool { return f.transport() == 300 })
	}
	alice.quiet(500 * time.Millisecond)
	bob.quiet(300 * time.Millisecond)
}

// TestInFlightMessageSurvivesGatewayKill: bob's gateway dies with a message
// pushed to him but not acked; he reconnects to the other gateway and gets
// it again, and alice gets one 300.
func TestInFlightMessageSurvivesGatewayKill(t *testing.T) {
	t.Parallel()
	e := startSuite(t, 2)
	alice := dial(t, e.gw(0), token(t, secret, "alice"), "phone")
	bobTok := token(t, secret, "bob")
	bob := dial(t, e.gw(1), bobTok, "laptop")

	alice.direct("m-gw", "bob", "in flight when the gateway dies")
	alice.expectTransport(100, "m-gw")
	bob.expectMessage("m-gw")
	e.suite.Kill(e.suite.Gateways()[1])

	bob = dial(t, e.gw(0), bobTok, "laptop")
	bob.expectMessage("m-gw")
	bob.ack("m-gw")
	alice.expectTransport(300, "m-gw")
	alice.quiet(500 * time.Millisecond)
	bob.quiet(300 * time.Millisecond)
}
