package lease

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// step is one call in a connect/disconnect scenario.
type step struct {
	op      string // "heartbeat", "connect" or "disconnect"
	conn    Connection
	wantErr error
}

func TestConnectDisconnect(t *testing.T) {
	t.Parallel()
	forEachTopology(t, testConnectDisconnect)
}

func testConnectDisconnect(t *testing.T, srv *servers) {
	alice, bob := "@alice@localhost", "@bob@localhost"
	phone1 := Connection{User: alice, Device: "phone", Gateway: "gw-1", ID: "c1"}
	phone2 := Connection{User: alice, Device: "phone", Gateway: "gw-1", ID: "c2"}
	phoneOn2 := Connection{User: alice, Device: "phone", Gateway: "gw-2", ID: "c3"}
	laptop := Connection{User: alice, Device: "laptop", Gateway: "gw-2", ID: "c4"}
	bobPhone := Connection{User: bob, Device: "phone", Gateway: "gw-1", ID: "c5"}
	hb := func(gw string) step { return step{op: "heartbeat", conn: Connection{Gateway: gw}} }
	tests := []struct {
		name        string
		steps       []step
		wantChanges []change
		// wantDevices is alice's device → gateway at the end.
		wantDevices map[string]string
	}{
		{
			name:        "first device online, last offline",
			steps:       []step{hb("gw-1"), {op: "connect", conn: phone1}, {op: "disconnect", conn: phone1}},
			wantChanges: []change{{user: alice, online: true}, {user: alice, online: false}},
		},
		{
			name: "online while any device is",
			steps: []step{
				hb("gw-1"), hb("gw-2"),
				{op: "connect", conn: phone1}, {op: "connect", conn: laptop},
				{op: "disconnect", conn: phone1},
			},
			wantChanges: []change{{user: alice, online: true}},
			wantDevices: map[string]string{"laptop": "gw-2"},
		},
		{
			name: "late disconnect of a replaced connection is ignored",
			steps: []step{
				hb("gw-1"),
				{op: "connect", conn: phone1}, {op: "connect", conn: phone2},
				{op: "disconnect", conn: phone1},
			},
			wantChanges: []change{{user: alice, online: true}},
			wantDevices: map[string]string{"phone": "gw-1"},
		},
		{
			name: "device moving to another gateway",
			steps: []step{
				hb("gw-1"), hb("gw-2"),
				{op: "connect", conn: phone1}, {op: "connect", conn: phoneOn2},
				{op: "disconnect", conn: phone1},
			},
			wantChanges: []change{{user: alice, online: true}},
			wantDevices: map[string]string{"phone": "gw-2"},
		},
		{
			name: "users are independent",
			steps: []step{
				hb("gw-1"),
				{op: "connect", conn: phone1}, {op: "connect", conn: bobPhone},
				{op: "disconnect", conn: bobPhone},
			},
			wantChanges: []change{{user: alice, online: true}, {user: bob, online: true}, {user: bob, online: false}},
			wantDevices: map[string]string{"phone": "gw-1"},
		},
		{
			name:  "connect without a lease",
			steps: []step{{op: "connect", conn: phone1, wantErr: ErrUnknownGateway}},
		},
		{
			name: "disconnect of an unknown connection",
			steps: []step{
				{op: "disconnect", conn: phone1},
			},
		},
		{
			name: "invalid connections",
			steps: []step{
				hb("gw-1"),
				{op: "connect", conn: Connection{Device: "phone", Gateway: "gw-1", ID: "c"}, wantErr: ErrInvalid},
				{op: "connect", conn: Connection{User: alice, Gateway: "gw-1", ID: "c"}, wantErr: ErrInvalid},
				{op: "connect", conn: Connection{User: alice, Device: "phone", ID: "c"}, wantErr: ErrInvalid},
				{op: "connect", conn: Connection{User: alice, Device: "phone", Gateway: "gw-1"}, wantErr: ErrInvalid},
				{op: "connect", conn: Connection{User: alice, Device: "ph\x1fone", Gateway: "gw-1", ID: "c"}, wantErr: ErrInvalid},
				{op: "connect", conn: Connection{User: strings.Repeat("a", MaxIDLen+1), Device: "phone", Gateway: "gw-1", ID: "c"}, wantErr: ErrInvalid},
				{op: "disconnect", conn: Connection{User: alice, Device: "phone", Gateway: "gw-1"}, wantErr: ErrInvalid},
				{op: "heartbeat", conn: Connection{}, wantErr: ErrInvalid},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, srv)
			tr := e.tracker(t, 0)
			events := e.presenceEvents(t)
			for i, s := range tt.steps {
				var err error
				switch s.op {
				case "heartbeat":
					_, err = tr.Heartbeat(t.Context(), s.conn.Gateway, time.Minute)
				case "connect":
					err = tr.Connect(t.Context(), s.conn)
				case "disconnect":
					err = tr.Disconnect(t.Context(), s.conn)
				default:
					t.Fatalf("step %d: unknown op %q", i, s.op)
				}
				if s.wantErr != nil {
					require.ErrorIs(t, err, s.wantErr, "step %d %s", i, s.op)
				} else {
					require.NoError(t, err, "step %d %s", i, s.op)
				}
			}
			e.settle(t)
			evs := events.rest(t)
			require.Equal(t, tt.wantChanges, changes(evs))
			for _, ev := range evs {
				require.Positive(t, ev.GetLastSeenMs(), "last seen of %v", ev)
			}

			states, err := tr.Query(t.Context(), []string{alice})
			require.NoError(t, err)
			got := map[string]string{}
			for _, d := range states[0].Devices {
				got[d.Device] = d.Gateway
				require.Positive(t, d.SinceMs)
			}
			if tt.wantDevices == nil {
				tt.wantDevices = map[string]string{}
			}
			require.Equal(t, tt.wantDevices, got)
			require.Equal(t, len(tt.wantDevices) > 0, states[0].Online)
		})
	}
}

func TestReconnectKeepsSince(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startServers(t))
	tr := e.tracker(t, 0)
	c := Connection{User: "@alice@localhost", Device: "phone", Gateway: "gw-1", ID: "c1"}
	_, err := tr.Heartbeat(t.Context(), c.Gateway, MaxLease)
	require.NoError(t, err)
	require.NoError(t, tr.Connect(t.Context(), c))
	first, err := tr.Query(t.Context(), []string{c.User})
	require.NoError(t, err)

	// The gateway reports the same connection again, as after a lost lease.
	tr.now = func() time.Time { return time.Now().Add(time.Hour) }
	require.NoError(t, tr.Connect(t.Context(), c))
	again, err := tr.Query(t.Context(), []string{c.User})
	require.NoError(t, err)
	require.Equal(t, first[0].Devices, again[0].Devices)
}

func TestHeartbeat(t *testing.T) {
	t.Parallel()
	srv := startServers(t)
	tests := []struct {
		name      string
		leases    []time.Duration
		wantKnown []bool
		wantErr   error
	}{
		{name: "new gateway is unknown, then known", leases: []time.Duration{time.Minute, time.Minute}, wantKnown: []bool{false, true}},
		{name: "zero asks for the default lease", leases: []time.Duration{0, 0}, wantKnown: []bool{false, true}},
		{name: "negative lease", leases: []time.Duration{-time.Second}, wantErr: ErrInvalid},
		{name: "lease too long", leases: []time.Duration{MaxLease + time.Second}, wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, srv)
			tr := e.tracker(t, 0)
			for i, l := range tt.leases {
				known, err := tr.Heartbeat(t.Context(), "gw-1", l)
				if tt.wantErr != nil {
					require.ErrorIs(t, err, tt.wantErr)
					continue
				}
				require.NoError(t, err)
				require.Equal(t, tt.wantKnown[i], known, "heartbeat %d", i)
			}
		})
	}
}

func TestReleaseEndsTheLeaseAtTheNextSweep(t *testing.T) {
	t.Parallel()
	e := newEnv(t, startServers(t))
	tr := e.tracker(t, 0)
	ctx := t.Context()
	c := Connection{User: "@alice@localhost", Device: "phone", Gateway: "gw-1", ID: "c1"}
	_, err := tr.Heartbeat(ctx, c.Gateway, MaxLease)
	require.NoError(t, err)
	require.NoError(t, tr.Connect(ctx, c))
	swept, err := tr.Sweep(ctx)
	require.NoError(t, err)
	require.Zero(t, swept, "a live lease is not swept")

	require.NoError(t, tr.Release(ctx, c.Gateway))
	require.NoError(t, tr.Release(ctx, "gw-unknown"), "releasing no lease does nothing")
	swept, err = tr.Sweep(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, swept)
	states, err := tr.Query(ctx, []string{c.User})
	require.NoError(t, err)
	require.False(t, states[0].Online, "what the released gateway still held is gone")

	known, err := tr.Heartbeat(ctx, c.Gateway, MaxLease)
	require.NoError(t, err)
	require.False(t, known, "a released gateway starts a new lease")
	require.ErrorIs(t, tr.Release(ctx, ""), ErrInvalid)
}
