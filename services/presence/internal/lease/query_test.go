package lease

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestQuery(t *testing.T) {
	t.Parallel()
	forEachTopology(t, testQuery)
}

func testQuery(t *testing.T, srv *servers) {
	alice, bob, carol := "@alice@localhost", "@bob@localhost", "@carol@localhost"
	tooMany := make([]string, MaxQueryUsers+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("@u%d@localhost", i)
	}
	tests := []struct {
		name    string
		users   []string
		wantErr error
		// want is, per user asked: online, devices in order, and whether a
		// last-seen time is expected.
		want []queryWant
	}{
		{
			name:  "order kept, devices sorted",
			users: []string{bob, carol, alice},
			want: []queryWant{
				{online: false, seen: true},
				{online: false, seen: false},
				{online: true, seen: true, devices: []string{"laptop@gw-2", "phone@gw-1"}},
			},
		},
		{name: "unknown user is offline, never seen", users: []string{carol}, want: []queryWant{{}}},
		{name: "nobody", users: nil},
		{name: "empty user", users: []string{alice, ""}, wantErr: ErrInvalid},
		{name: "too many users", users: tooMany, wantErr: ErrInvalid},
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
			// alice: phone and laptop online; bob: was online, now offline.
			for _, c := range []Connection{
				{User: alice, Device: "phone", Gateway: "gw-1", ID: "1"},
				{User: alice, Device: "laptop", Gateway: "gw-2", ID: "2"},
				{User: bob, Device: "phone", Gateway: "gw-1", ID: "3"},
			} {
				require.NoError(t, tr.Connect(ctx, c))
			}
			require.NoError(t, tr.Disconnect(ctx, Connection{User: bob, Device: "phone", Gateway: "gw-1", ID: "3"}))

			before := time.Now().UnixMilli()
			got, err := tr.Query(ctx, tt.users)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Len(t, got, len(tt.want))
			for i, w := range tt.want {
				st := got[i]
				require.Equal(t, tt.users[i], st.User)
				require.Equal(t, w.online, st.Online, st.User)
				var devices []string
				for _, d := range st.Devices {
					devices = append(devices, d.Device+"@"+d.Gateway)
				}
				require.Equal(t, w.devices, devices, st.User)
				switch {
				case w.online:
					require.GreaterOrEqual(t, st.LastSeenMs, before, "online users are seen now")
				case w.seen:
					require.Positive(t, st.LastSeenMs)
				default:
					require.Zero(t, st.LastSeenMs)
				}
			}
		})
	}
}

type queryWant struct {
	online  bool
	seen    bool
	devices []string
}
