package ws

import (
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/bachata-chat/bachata/services/gateway/internal/ratelimit"
)

// TestRateLimitRefusesThenClosesWith1008: past the burst, data messages get
// 4290 and are not routed; the user's other connection shares the bucket;
// the connection that keeps going is closed with 1008.
func TestRateLimitRefusesThenClosesWith1008(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *Options, _ *string) {
		// A rate so low that no token comes back during the test.
		o.Limiter = ratelimit.New(ratelimit.Options{Rate: 0.001, Burst: 2, Strikes: 3, StrikeWindow: time.Hour})
	})
	phone := h.dial("alice", "phone")
	laptop := h.dial("alice", "laptop")
	send := func(c *wsClient, id string) {
		c.sendRaw(fmt.Sprintf(`{"id":%q,"type":"direct","dest":"bob","data":{}}`, id))
	}

	send(phone, "m1")
	require.Equal(t, `{"type":100,"data":"m1"}`, phone.next().raw)
	send(laptop, "m2")
	require.Equal(t, `{"type":100,"data":"m2"}`, laptop.next().raw)

	// The bucket is empty for alice on every connection.
	send(laptop, "m3")
	f := laptop.next()
	require.Equal(t, "direct:error", f.dataType())
	require.Equal(t, 4290, f.errBody(t).ErrCode)
	require.Equal(t, "m3", f.ID)

	send(phone, "m4")
	require.Equal(t, 4290, phone.next().errBody(t).ErrCode)
	send(phone, "m5")
	require.Equal(t, 4290, phone.next().errBody(t).ErrCode)
	send(phone, "m6") // third strike on this connection
	code, _, frames := phone.closeStatus()
	require.Equal(t, websocket.StatusPolicyViolation, code)
	require.Len(t, frames, 1)
	require.Equal(t, 4290, frames[0].errBody(t).ErrCode)

	require.Len(t, h.peers.Routes(), 2, "refused messages must not be routed")
	laptop.pingPong() // the other connection stays open
}
