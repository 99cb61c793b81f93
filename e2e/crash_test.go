package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bachata-chat/bachata/libs/localsuite"
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
	send := func(n int) {
		for range n {
			id := fmt.Sprintf("m%02d", len(ids))
			alice.sendUntilAccepted(id, "bob", "survives "+id)
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

// TestOrderKeptAcrossDeliveryInstancesAndOneOfThemKilled: with two delivery
// instances sharing the shards, bob gets alice's messages in the order she
// sent them, and still does after one instance is killed and its shards
// move to the other.
func TestOrderKeptAcrossDeliveryInstancesAndOneOfThemKilled(t *testing.T) {
	t.Parallel()
	e := startSuiteWith(t, func(c *localsuite.Config) {
		c.Gateways = 2
		c.Deliveries = 2
		c.Env = append(c.Env, "BACHATA_DELIVERY_SHARD_LEASE=1s", "BACHATA_DELIVERY_VISIBILITY=2s")
	})
	alice := dial(t, e.gw(0), token(t, secret, "alice"), "phone")
	bob := dial(t, e.gw(1), token(t, secret, "bob"), "laptop")

	sent := 0
	send := func(n int) {
		for range n {
			alice.sendUntilAccepted(fmt.Sprintf("m%03d", sent), "bob", "in order")
			sent++
		}
	}
	// received checks bob gets every message once, in order, acking each;
	// a message pushed again after the kill may repeat, never go back.
	next := 0
	receive := func() {
		for next < sent {
			f := bob.expect("a data message", func(f frame) bool { return f.dataType() == "direct" })
			bob.ack(f.ID)
			want := fmt.Sprintf("m%03d", next)
			if f.ID == want {
				next++
				continue
			}
			require.Less(t, f.ID, want, "message overtook an earlier one")
		}
	}

	send(40)
	receive()
	e.suite.Kill(e.suite.Instance("delivery-2"))
	send(40)
	receive()
}

// sendUntilAccepted does what a client does: it sends a direct message and
// resends the same id after a retryable error (a peer still reconnecting,
// or the rate limit) until it gets the 100. 300s, and the 100 of an earlier
// resend, may come in between and are passed over.
func (c *client) sendUntilAccepted(id, dest, text string) {
	c.t.Helper()
	for attempt := 0; ; attempt++ {
		require.Less(c.t, attempt, 100, "message %s never accepted", id)
		c.direct(id, dest, text)
		for {
			f := c.next()
			if f.transport() == 100 && f.dataString() == id {
				return
			}
			if f.transport() == 100 || f.transport() == 300 {
				continue
			}
			code := f.errCode()
			require.True(c.t, code >= 5000 || code == 4290, "want 100 or a retryable error, got %s", f.raw)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
}
