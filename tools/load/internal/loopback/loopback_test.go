package loopback

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		raw     string
		schemes []string
		want    string
		wantErr error
	}{
		{name: "loopback", raw: "ws://127.0.0.1:8080/ws", schemes: []string{"ws"}, want: "ws://127.0.0.1:8080/ws"},
		{name: "other loopback", raw: "ws://127.4.5.6:8080/ws", schemes: []string{"ws"}, want: "ws://127.4.5.6:8080/ws"},
		{name: "localhost is 127.0.0.1", raw: "http://localhost:8081/metrics", schemes: []string{"http"}, want: "http://127.0.0.1:8081/metrics"},
		{name: "remote IP", raw: "ws://10.0.0.1:8080/ws", schemes: []string{"ws"}, wantErr: ErrNotLoopback},
		{name: "public name", raw: "ws://example.com:8080/ws", schemes: []string{"ws"}, wantErr: ErrNotLoopback},
		{name: "name under localhost", raw: "ws://localhost.example.com:8080/ws", schemes: []string{"ws"}, wantErr: ErrNotLoopback},
		{name: "IPv6 loopback", raw: "ws://[::1]:8080/ws", schemes: []string{"ws"}, wantErr: ErrNotLoopback},
		{name: "IPv4-mapped IPv6", raw: "ws://[::ffff:127.0.0.1]:8080/ws", schemes: []string{"ws"}, wantErr: ErrNotLoopback},
		{name: "unspecified", raw: "ws://0.0.0.0:8080/ws", schemes: []string{"ws"}, wantErr: ErrNotLoopback},
		{name: "wrong scheme", raw: "wss://127.0.0.1:8080/ws", schemes: []string{"ws"}},
		{name: "no port", raw: "ws://127.0.0.1/ws", schemes: []string{"ws"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u, err := CheckURL(tt.raw, tt.schemes...)
			if tt.want == "" {
				require.Error(t, err)
				if tt.wantErr != nil {
					require.ErrorIs(t, err, tt.wantErr)
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, u.String())
		})
	}
}

func TestParseSources(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr error
	}{
		{name: "one", in: "127.0.0.2", want: []string{"127.0.0.2"}},
		{name: "range", in: "127.0.0.2-127.0.0.4", want: []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}},
		{name: "range over an octet", in: "127.0.0.255-127.0.1.0", want: []string{"127.0.0.255", "127.0.1.0"}},
		{name: "list and range", in: "127.0.0.9, 127.0.0.2-127.0.0.3", want: []string{"127.0.0.9", "127.0.0.2", "127.0.0.3"}},
		{name: "remote", in: "192.168.1.2", wantErr: ErrNotLoopback},
		{name: "range ending outside", in: "127.255.255.254-128.0.0.1", wantErr: ErrNotLoopback},
		{name: "IPv6", in: "::1", wantErr: ErrNotLoopback},
		{name: "backwards", in: "127.0.0.5-127.0.0.2"},
		{name: "too many", in: "127.0.0.1-127.255.255.255"},
		{name: "empty", in: " , "},
		{name: "garbage", in: "127.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseSources(tt.in)
			if tt.want == nil {
				require.Error(t, err)
				if tt.wantErr != nil {
					require.ErrorIs(t, err, tt.wantErr)
				}
				return
			}
			require.NoError(t, err)
			want := make([]netip.Addr, 0, len(tt.want))
			for _, s := range tt.want {
				want = append(want, netip.MustParseAddr(s))
			}
			require.Equal(t, want, got)
		})
	}
}

func TestCheckURLs(t *testing.T) {
	t.Parallel()
	us, err := CheckURLs(" ws://127.0.0.1:8080/ws, ,ws://localhost:8082/ws", "ws")
	require.NoError(t, err)
	require.Len(t, us, 2)
	require.Equal(t, "127.0.0.1:8082", us[1].Host)

	us, err = CheckURLs("ws://10.0.0.1:80/ws,ws://127.0.0.1:80/ws,http://127.0.0.1:80", "ws")
	require.ErrorIs(t, err, ErrNotLoopback)
	require.ErrorContains(t, err, "want scheme ws")
	require.Len(t, us, 1, "the good entry is kept; the caller refuses the list")
}
