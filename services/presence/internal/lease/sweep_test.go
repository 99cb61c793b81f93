package lease

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	eventsv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/events/v1"
)

// downConns lists a GatewayDown's connections as user/device/connection.
func downConns(evs ...*eventsv1.GatewayDown) []string {
	var out []string
	for _, ev := range evs {
		for _, c := range ev.GetConnections() {
			out = append(out, c.GetDevice().GetUser()+"/"+c.GetDevice().GetDevice()+"/"+c.GetConnectionId())
		}
	}
	return out
}

// runSweeper runs tr's sweeper until the test ends.
func runSweeper(t *testing.T, tr *Tracker, interval time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- tr.RunSweeper(ctx, interval) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}

func TestCrashedGatewayGoesOffline(t *testing.T) {
	t.Parallel()
	forEachTopology(t, testCrashedGatewayGoesOffline)
}

func testCrashedGatewayGoesOffline(t *testing.T, srv *servers) {
	e := newEnv(t, srv)
	tr := e.tracker(t, 0)
	alice, bob := "@alice@localhost", "@bob@localhost"
	ctx := t.Context()

	_, err := tr.Heartbeat(ctx, "gw-dead", 300*time.Millisecond)
	require.NoError(t, err)
	_, err = tr.Heartbeat(ctx, "gw-live", MaxLease)
	require.NoError(t, err)
	for _, c := range []Connection{
		{User: alice, Device: "phone", Gateway: "gw-dead", ID: "c1"},
		{User: alice, Device: "laptop", Gateway: "gw-live", ID: "c2"},
		{User: bob, Device: "phone", Gateway: "gw-dead", ID: "c3"},
	} {
		require.NoError(t, tr.Connect(ctx, c))
	}
	require.NoError(t, e.pub.Flush())
	presence := e.presenceEvents(t)
	downs := e.gatewayDowns(t)

	// gw-dead never heartbeats again.
	runSweeper(t, tr, 50*time.Millisecond)
	down := downs.next(t)
	require.Equal(t, "gw-dead", down.GetGatewayId())
	require.ElementsMatch(t, []string{alice + "/phone/c1", bob + "/phone/c3"}, downConns(down))
	offline := presence.next(t)
	require.Equal(t, bob, offline.GetUser())
	require.False(t, offline.GetOnline())
	require.Positive(t, offline.GetLastSeenMs())
	e.settle(t)
	require.Empty(t, presence.rest(t), "alice is still online on gw-live")
	require.Empty(t, downs.rest(t))

	states, err := tr.Query(ctx, []string{alice, bob})
	require.NoError(t, err)
	require.True(t, states[0].Online)
	require.Equal(t, []DeviceState{{Device: "laptop", Gateway: "gw-live", SinceMs: states[0].Devices[0].SinceMs}}, states[0].Devices)
	require.False(t, states[1].Online)
	require.Equal(t, offline.GetLastSeenMs(), states[1].LastSeenMs)

	// The gateway comes back: Connect is refused until it heartbeats, and the
	// heartbeat tells it to connect everything again.
	again := Connection{User: bob, Device: "phone", Gateway: "gw-dead", ID: "c3"}
	require.ErrorIs(t, tr.Connect(ctx, again), ErrUnknownGateway)
	known, err := tr.Heartbeat(ctx, "gw-dead", MaxLease)
	require.NoError(t, err)
	require.False(t, known)
	require.NoError(t, tr.Connect(ctx, again))
	require.True(t, presence.next(t).GetOnline())

	// The sweep counts the gateway once it has finished, just after the
	// events were published, so the counters may trail the events a moment.
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(tr.metrics.expired) == 1
	}, waitFor, 10*time.Millisecond, "one expired gateway counted")
	require.Equal(t, 1.0, testutil.ToFloat64(tr.metrics.expired))
	require.Equal(t, 1.0, testutil.ToFloat64(tr.metrics.events.WithLabelValues(kindGatewayDown)))
	require.Positive(t, testutil.ToFloat64(tr.metrics.sweeps))
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(tr.metrics.gateways) == 2 && testutil.ToFloat64(tr.metrics.devices) == 2
	}, waitFor, 10*time.Millisecond, "gauges: gw-live with alice's laptop, gw-dead with bob's phone")
}

func TestSweepersNeverDoublePublish(t *testing.T) {
	t.Parallel()
	forEachTopology(t, testSweepersNeverDoublePublish)
}

func testSweepersNeverDoublePublish(t *testing.T, srv *servers) {
	e := newEnv(t, srv)
	const gateways, perGateway, sweepers = 40, 3, 4
	trs := make([]*Tracker, sweepers)
	for i := range trs {
		trs[i] = e.tracker(t, 0)
	}
	ctx := t.Context()
	for g := range gateways {
		gw := fmt.Sprintf("gw-%d", g)
		_, err := trs[0].Heartbeat(ctx, gw, time.Millisecond)
		require.NoError(t, err)
		for c := range perGateway {
			// The lease is already past its expiry, but no sweep has claimed
			// it yet, so it still takes connections.
			require.NoError(t, trs[0].Connect(ctx, Connection{
				User: fmt.Sprintf("@u-%d-%d@localhost", g, c), Device: "d", Gateway: gw, ID: "c",
			}))
		}
	}
	require.NoError(t, e.pub.Flush())
	presence := e.presenceEvents(t)
	downs := e.gatewayDowns(t)

	var swept atomic.Int64
	var wg sync.WaitGroup
	for _, tr := range trs {
		wg.Go(func() {
			deadline := time.Now().Add(waitFor)
			for swept.Load() < gateways && time.Now().Before(deadline) {
				n, err := tr.Sweep(ctx)
				if !assert.NoError(t, err) {
					return
				}
				swept.Add(int64(n))
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, gateways, swept.Load())

	e.settle(t)
	perGW := map[string]int{}
	for _, d := range downs.rest(t) {
		perGW[d.GetGatewayId()]++
		require.Len(t, d.GetConnections(), perGateway)
	}
	require.Len(t, perGW, gateways)
	for gw, n := range perGW {
		require.Equal(t, 1, n, "GatewayDown for %s", gw)
	}
	perUser := map[string]int{}
	for _, ev := range presence.rest(t) {
		require.False(t, ev.GetOnline())
		perUser[ev.GetUser()]++
	}
	require.Len(t, perUser, gateways*perGateway)
	for u, n := range perUser {
		require.Equal(t, 1, n, "offline events for %s", u)
	}
}

// claimNow claims every expired lease as a sweeper would, and then does
// nothing with them, like a sweeper that died right after claiming.
func claimNow(t *testing.T, tr *Tracker, deadline time.Duration) []string {
	t.Helper()
	now := time.Now().Add(time.Hour) // every lease counts as expired
	res, err := claimScript.Run(t.Context(), tr.rdb,
		[]string{tr.keys.leases(), tr.keys.epochs(), tr.keys.sweeps()},
		now.UnixMilli(), time.Now().Add(deadline).UnixMilli(), claimBatch).StringSlice()
	require.NoError(t, err)
	return res
}

func TestAbandonedClaimIsSweptAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startServers(t))
	tr := e.tracker(t, 0)
	ctx := t.Context()
	c := Connection{User: "@alice@localhost", Device: "phone", Gateway: "gw-1", ID: "c1"}
	_, err := tr.Heartbeat(ctx, c.Gateway, MaxLease)
	require.NoError(t, err)
	require.NoError(t, tr.Connect(ctx, c))
	downs := e.gatewayDowns(t)

	require.Equal(t, []string{"gw-1", "1"}, claimNow(t, tr, 200*time.Millisecond))
	n, err := tr.Sweep(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "the claim is held")

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		n, err := tr.Sweep(ctx)
		assert.NoError(c, err)
		assert.Equal(c, 1, n)
	}, waitFor, 20*time.Millisecond)
	require.Equal(t, []string{c.User + "/phone/c1"}, downConns(downs.next(t)))
	states, err := tr.Query(ctx, []string{c.User})
	require.NoError(t, err)
	require.False(t, states[0].Online)
}

func TestSweepSparesConnectionsOfANewerLease(t *testing.T) {
	t.Parallel()
	forEachTopology(t, testSweepSparesConnectionsOfANewerLease)
}

func testSweepSparesConnectionsOfANewerLease(t *testing.T, srv *servers) {
	e := newEnv(t, srv)
	tr := e.tracker(t, 0)
	ctx := t.Context()
	c := Connection{User: "@alice@localhost", Device: "phone", Gateway: "gw-1", ID: "c1"}
	_, err := tr.Heartbeat(ctx, c.Gateway, MaxLease)
	require.NoError(t, err)
	require.NoError(t, tr.Connect(ctx, c))
	require.NoError(t, e.pub.Flush())
	presence := e.presenceEvents(t)
	downs := e.gatewayDowns(t)

	// A sweeper claims the lease and stalls; meanwhile the gateway, which
	// was only paused, heartbeats and reports the same connection again.
	claimed := claimNow(t, tr, 200*time.Millisecond)
	require.Len(t, claimed, 2)
	oldEpoch := claimed[1]
	known, err := tr.Heartbeat(ctx, c.Gateway, MaxLease)
	require.NoError(t, err)
	require.False(t, known)
	require.NoError(t, tr.Connect(ctx, c))
	// As if the stalled sweeper had read the old set before Connect took
	// the connection out of it.
	require.NoError(t, e.rdb.SAdd(ctx, tr.keys.conns(c.Gateway, oldEpoch), c.member()).Err())

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		n, err := tr.Sweep(ctx)
		assert.NoError(c, err)
		assert.Equal(c, 1, n)
	}, waitFor, 20*time.Millisecond, "the abandoned claim is swept again")
	down := downs.next(t)
	require.Equal(t, c.Gateway, down.GetGatewayId())
	require.Empty(t, down.GetConnections(), "the live connection is not reported closed")
	e.settle(t)
	require.Empty(t, presence.rest(t))
	states, err := tr.Query(ctx, []string{c.User})
	require.NoError(t, err)
	require.True(t, states[0].Online)
}

func TestConnectUndoneWhenLeaseIsSweptMeanwhile(t *testing.T) {
	t.Parallel()
	srv := startServers(t)
	alice := "@alice@localhost"
	tests := []struct {
		name string
		// laptop, when set, keeps alice online on another gateway.
		laptop      bool
		wantOnline  bool
		wantDevices []string
	}{
		{name: "alone: no event at all", wantOnline: false},
		{name: "with another device: still online", laptop: true, wantOnline: true, wantDevices: []string{"laptop"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, srv)
			tr := e.tracker(t, 0)
			ctx := t.Context()
			for _, gw := range []string{"gw-1", "gw-2"} {
				_, err := tr.Heartbeat(ctx, gw, MaxLease)
				require.NoError(t, err)
			}
			if tt.laptop {
				require.NoError(t, tr.Connect(ctx, Connection{User: alice, Device: "laptop", Gateway: "gw-2", ID: "l"}))
			}
			require.NoError(t, e.pub.Flush())
			presence := e.presenceEvents(t)

			tr.testHookRecorded = func() {
				// Only gw-1 expires: claim it alone by pushing gw-2 far out.
				_, err := tr.Heartbeat(ctx, "gw-2", MaxLease)
				require.NoError(t, err)
				require.NoError(t, e.rdb.ZAdd(ctx, tr.keys.leases(), redisZ(0, "gw-1")).Err())
				now := time.Now()
				res, err := claimScript.Run(ctx, tr.rdb, []string{tr.keys.leases(), tr.keys.epochs(), tr.keys.sweeps()},
					now.UnixMilli(), now.Add(time.Hour).UnixMilli(), claimBatch).StringSlice()
				require.NoError(t, err)
				require.Equal(t, "gw-1", res[0])
			}
			err := tr.Connect(ctx, Connection{User: alice, Device: "phone", Gateway: "gw-1", ID: "p"})
			require.ErrorIs(t, err, ErrUnknownGateway)

			e.settle(t)
			require.Empty(t, presence.rest(t), "net change is none")
			states, err := tr.Query(ctx, []string{alice})
			require.NoError(t, err)
			require.Equal(t, tt.wantOnline, states[0].Online)
			var devices []string
			for _, d := range states[0].Devices {
				devices = append(devices, d.Device)
			}
			require.Equal(t, tt.wantDevices, devices)
		})
	}
}

func TestGatewayDownSplitsLargeGateways(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startServers(t))
	tr := e.tracker(t, 0)
	ctx := t.Context()
	_, err := tr.Heartbeat(ctx, "gw-big", time.Millisecond)
	require.NoError(t, err)
	// Long user IDs put well over one payload's worth in one gateway.
	const n = 1500
	want := make([]string, 0, n)
	for i := range n {
		user := fmt.Sprintf("@%s-%d@localhost", strings.Repeat("u", 900), i)
		require.NoError(t, tr.Connect(ctx, Connection{User: user, Device: "d", Gateway: "gw-big", ID: "c"}))
		want = append(want, user+"/d/c")
	}
	downs := e.gatewayDowns(t)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		n, err := tr.Sweep(ctx)
		assert.NoError(c, err)
		assert.Equal(c, 1, n)
	}, waitFor, 10*time.Millisecond)
	e.settle(t)
	parts := downs.rest(t)
	require.Greater(t, len(parts), 1)
	require.ElementsMatch(t, want, downConns(parts...))
}
