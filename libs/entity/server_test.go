package entity

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseServer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want Server
		err  error
	}{
		{name: "dns", in: "localhost", want: Server{Host: "localhost"}},
		{name: "dns port", in: "chat.example.com:443", want: Server{Host: "chat.example.com", Port: 443}},
		{name: "port 1", in: "a:1", want: Server{Host: "a", Port: 1}},
		{name: "port max", in: "a:65535", want: Server{Host: "a", Port: 65535}},
		{name: "ipv4", in: "192.168.0.1", want: Server{Host: "192.168.0.1"}},
		{name: "ipv4 zeros", in: "0.0.0.0:80", want: Server{Host: "0.0.0.0", Port: 80}},
		{name: "ipv6", in: "[2001:db8::1]", want: Server{Host: "2001:db8::1"}},
		{name: "ipv6 port", in: "[::1]:8448", want: Server{Host: "::1", Port: 8448}},
		{name: "empty", in: "", err: ErrMissingServer},
		{name: "port 0", in: "a:0", err: ErrInvalidPort},
		{name: "port 65536", in: "a:65536", err: ErrInvalidPort},
		{name: "port abc", in: "a:abc", err: ErrInvalidPort},
		{name: "port space", in: "a: 80", err: ErrInvalidPort},
		{name: "only port", in: ":80", err: ErrInvalidHost},
		{name: "unclosed bracket", in: "[::1:80", err: ErrInvalidHost},
		{name: "ipv4 out of range", in: "1.2.3.300", err: ErrInvalidHost},
		{name: "trailing dot", in: "localhost.", err: ErrInvalidHost},
		{name: "space", in: "local host", err: ErrInvalidHost},
		{name: "tab", in: "localhost\t", err: ErrInvalidHost},
		{name: "dns name 253", in: strings.Repeat("abcdefghi.", 25) + "abc", want: Server{Host: strings.Repeat("abcdefghi.", 25) + "abc"}},
		{name: "dns name 254", in: strings.Repeat("abcdefghi.", 25) + "abcd", err: ErrInvalidHost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseServer(tt.in)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.in, got.String())
		})
	}
}
