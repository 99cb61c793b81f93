package entity

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want ID
	}{
		{name: "user", in: "@bob@localhost", want: ID{Kind: KindUser, Local: "bob", Server: "localhost"}},
		{name: "user all local chars", in: "@a.b_c=d-e/f09@example.com", want: ID{Kind: KindUser, Local: "a.b_c=d-e/f09", Server: "example.com"}},
		{name: "user with port", in: "@bob@example.com:8448", want: ID{Kind: KindUser, Local: "bob", Server: "example.com:8448"}},
		{name: "user on ipv4", in: "@bob@127.0.0.1", want: ID{Kind: KindUser, Local: "bob", Server: "127.0.0.1"}},
		{name: "user on ipv4 port", in: "@bob@10.0.0.1:65535", want: ID{Kind: KindUser, Local: "bob", Server: "10.0.0.1:65535"}},
		{name: "user on ipv6", in: "@bob@[::1]", want: ID{Kind: KindUser, Local: "bob", Server: "[::1]"}},
		{name: "user on ipv6 port", in: "@bob@[2001:db8::1]:1", want: ID{Kind: KindUser, Local: "bob", Server: "[2001:db8::1]:1"}},
		{name: "room alias", in: "#general:example.org", want: ID{Kind: KindRoomAlias, Local: "general", Server: "example.org"}},
		{name: "room alias with port", in: "#general:example.org:8080", want: ID{Kind: KindRoomAlias, Local: "general", Server: "example.org:8080"}},
		{name: "room", in: "!4d6e8f10-0a1b-4c2d-9e3f-5a6b7c8d9e0f@localhost", want: ID{Kind: KindRoom, Local: "4d6e8f10-0a1b-4c2d-9e3f-5a6b7c8d9e0f", Server: "localhost"}},
		{name: "message", in: "&4d6e8f10-0a1b-4c2d-9e3f-5a6b7c8d9e0f:chat.example.com", want: ID{Kind: KindMessage, Local: "4d6e8f10-0a1b-4c2d-9e3f-5a6b7c8d9e0f", Server: "chat.example.com"}},
		{name: "msisdn", in: "%447700900123:localhost", want: ID{Kind: KindMSISDN, Local: "447700900123", Server: "localhost"}},
		{name: "msisdn 15 digits", in: "%123456789012345:localhost", want: ID{Kind: KindMSISDN, Local: "123456789012345", Server: "localhost"}},
		{name: "email", in: "^alice_at_example.com:localhost", want: ID{Kind: KindEmail, Local: "alice_at_example.com", Server: "localhost"}},
		{name: "email username with _at_", in: "^john_at_work_at_mail.example.com:localhost", want: ID{Kind: KindEmail, Local: "john_at_work_at_mail.example.com", Server: "localhost"}},
		{name: "single label host", in: "@bob@server", want: ID{Kind: KindUser, Local: "bob", Server: "server"}},
		{name: "host with digit labels", in: "@bob@1.2.3.example", want: ID{Kind: KindUser, Local: "bob", Server: "1.2.3.example"}},
		{name: "host with hyphen inside", in: "@bob@my-host.xn--p1ai", want: ID{Kind: KindUser, Local: "bob", Server: "my-host.xn--p1ai"}},
		{name: "ipv4 mapped ipv6", in: "@bob@[::ffff:1.2.3.4]", want: ID{Kind: KindUser, Local: "bob", Server: "[::ffff:1.2.3.4]"}},
		{name: "max length", in: "@" + strings.Repeat("a", 253-len("localhost")) + "@localhost", want: ID{Kind: KindUser, Local: strings.Repeat("a", 244), Server: "localhost"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.in, got.String())
			again, err := New(got.Kind, got.Local, got.Server)
			require.NoError(t, err)
			require.Equal(t, got, again)
		})
	}
}

func TestParseInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want error
	}{
		{name: "empty", in: "", want: ErrEmpty},
		{name: "too long", in: "@" + strings.Repeat("a", 246) + "@localhost", want: ErrTooLong},
		{name: "no sigil", in: "bob@localhost", want: ErrUnknownSigil},
		{name: "unknown sigil", in: "$bob@localhost", want: ErrUnknownSigil},
		{name: "sigil only", in: "@", want: ErrMissingServer},
		{name: "missing server", in: "@bob", want: ErrMissingServer},
		{name: "empty server", in: "@bob@", want: ErrMissingServer},
		{name: "wrong separator for user", in: "@bob:localhost", want: ErrMissingServer},
		{name: "wrong separator for alias", in: "#general@localhost", want: ErrMissingServer},
		{name: "empty local", in: "@@localhost", want: ErrInvalidLocal},
		{name: "empty alias", in: "#:localhost", want: ErrInvalidLocal},
		{name: "uppercase local", in: "@Bob@localhost", want: ErrInvalidLocal},
		{name: "space in local", in: "@b ob@localhost", want: ErrInvalidLocal},
		{name: "plus in local", in: "@b+ob@localhost", want: ErrInvalidLocal},
		{name: "unicode local", in: "@bób@localhost", want: ErrInvalidLocal},
		{name: "uppercase uuid message", in: "&4D6E8F10:localhost", want: ErrInvalidLocal},
		{name: "msisdn with plus", in: "%+447700900123:localhost", want: ErrInvalidLocal},
		{name: "msisdn with letters", in: "%44770a:localhost", want: ErrInvalidLocal},
		{name: "msisdn too long", in: "%1234567890123456:localhost", want: ErrInvalidLocal},
		{name: "msisdn empty", in: "%:localhost", want: ErrInvalidLocal},
		{name: "email without _at_", in: "^alice.example.com:localhost", want: ErrInvalidLocal},
		{name: "email empty user", in: "^_at_example.com:localhost", want: ErrInvalidLocal},
		{name: "email empty host", in: "^alice_at_:localhost", want: ErrInvalidLocal},
		{name: "email bad host", in: "^alice_at_-x.com:localhost", want: ErrInvalidHost},
		{name: "uppercase host", in: "@bob@LocalHost", want: ErrInvalidHost},
		{name: "underscore host", in: "@bob@my_host", want: ErrInvalidHost},
		{name: "trailing dot", in: "@bob@example.com.", want: ErrInvalidHost},
		{name: "leading dot", in: "@bob@.example.com", want: ErrInvalidHost},
		{name: "double dot", in: "@bob@example..com", want: ErrInvalidHost},
		{name: "label starts with hyphen", in: "@bob@-example.com", want: ErrInvalidHost},
		{name: "label ends with hyphen", in: "@bob@example-.com", want: ErrInvalidHost},
		{name: "label too long", in: "@bob@" + strings.Repeat("a", 64) + ".com", want: ErrInvalidHost},
		{name: "second @ in server", in: "@bob@x@localhost", want: ErrInvalidHost},
		{name: "port 0", in: "@bob@localhost:0", want: ErrInvalidPort},
		{name: "port 65536", in: "@bob@localhost:65536", want: ErrInvalidPort},
		{name: "port 99999", in: "@bob@localhost:99999", want: ErrInvalidPort},
		{name: "port abc", in: "@bob@localhost:abc", want: ErrInvalidPort},
		{name: "port leading zero", in: "@bob@localhost:080", want: ErrInvalidPort},
		{name: "port empty", in: "@bob@localhost:", want: ErrInvalidPort},
		{name: "port negative", in: "@bob@localhost:-1", want: ErrInvalidPort},
		{name: "port too many digits", in: "@bob@localhost:000080", want: ErrInvalidPort},
		{name: "two ports", in: "@bob@localhost:80:90", want: ErrInvalidPort},
		{name: "ipv4 octet out of range", in: "@bob@256.1.1.1", want: ErrInvalidHost},
		{name: "ipv4 leading zero", in: "@bob@01.2.3.4", want: ErrInvalidHost},
		{name: "ipv4 three octets", in: "@bob@1.2.3", want: ErrInvalidHost},
		{name: "ipv4 five octets", in: "@bob@1.2.3.4.5", want: ErrInvalidHost},
		{name: "numeric single label", in: "@bob@12345", want: ErrInvalidHost},
		{name: "unclosed ipv6 bracket", in: "@bob@[::1", want: ErrInvalidHost},
		{name: "empty ipv6 brackets", in: "@bob@[]", want: ErrInvalidHost},
		{name: "ipv6 without brackets", in: "@bob@::1", want: ErrInvalidHost},
		{name: "ipv4 in brackets", in: "@bob@[1.2.3.4]", want: ErrInvalidHost},
		{name: "ipv6 uppercase", in: "@bob@[2001:DB8::1]", want: ErrInvalidHost},
		{name: "ipv6 not compressed", in: "@bob@[0:0:0:0:0:0:0:1]", want: ErrInvalidHost},
		{name: "ipv6 zone", in: "@bob@[fe80::1%25eth0]", want: ErrInvalidHost},
		{name: "ipv6 junk after bracket", in: "@bob@[::1]x", want: ErrInvalidHost},
		{name: "ipv6 bad port", in: "@bob@[::1]:0", want: ErrInvalidPort},
		{name: "ipv6 empty port", in: "@bob@[::1]:", want: ErrInvalidPort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tt.in)
			require.ErrorIs(t, err, tt.want)
			require.Zero(t, got)
		})
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		kind   Kind
		local  string
		server string
		want   string
		err    error
	}{
		{name: "user", kind: KindUser, local: "bob", server: "localhost", want: "@bob@localhost"},
		{name: "email", kind: KindEmail, local: "a_at_b.c", server: "s", want: "^a_at_b.c:s"},
		{name: "zero kind", kind: 0, local: "bob", server: "localhost", err: ErrUnknownSigil},
		{name: "bad local", kind: KindRoom, local: "R", server: "localhost", err: ErrInvalidLocal},
		{name: "no server", kind: KindRoom, local: "r", server: "", err: ErrMissingServer},
		{name: "too long", kind: KindUser, local: strings.Repeat("a", 250), server: "localhost", err: ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := New(tt.kind, tt.local, tt.server)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, id.String())
			require.Equal(t, tt.want, string(id.AppendTo(nil)))
		})
	}
}

func TestResolveUser(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		in     string
		server string
		want   string
		err    error
	}{
		{name: "bare", in: "bob", server: "localhost", want: "@bob@localhost"},
		{name: "bare other server", in: "bob", server: "chat.example.com:8443", want: "@bob@chat.example.com:8443"},
		{name: "full", in: "@bob@example.com", server: "localhost", want: "@bob@example.com"},
		{name: "room", in: "!r@localhost", server: "localhost", err: ErrWrongKind},
		{name: "alias", in: "#r:localhost", server: "localhost", err: ErrWrongKind},
		{name: "empty", in: "", server: "localhost", err: ErrInvalidLocal},
		{name: "bare uppercase", in: "Bob", server: "localhost", err: ErrInvalidLocal},
		{name: "bare with at", in: "bob@localhost", server: "localhost", err: ErrInvalidLocal},
		{name: "bad default server", in: "bob", server: "", err: ErrMissingServer},
		{name: "bad full", in: "@bob@", server: "localhost", err: ErrMissingServer},
		{name: "bare too long for server", in: strings.Repeat("a", 250), server: "localhost", err: ErrTooLong},
		{name: "bare too long", in: strings.Repeat("a", 300), server: "localhost", err: ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := ResolveUser(tt.in, tt.server)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, KindUser, id.Kind)
			require.Equal(t, tt.want, id.String())
		})
	}
}

func TestValidDest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		err  error
	}{
		{name: "bare", in: "bob"},
		{name: "user", in: "@bob@localhost"},
		{name: "room", in: "!room@localhost"},
		{name: "alias", in: "#room:localhost"},
		{name: "empty", in: "", err: ErrInvalidLocal},
		{name: "bad bare", in: "Bob", err: ErrInvalidLocal},
		{name: "bad id", in: "@bob@localhost:0", err: ErrInvalidPort},
		{name: "bare too long", in: strings.Repeat("a", 256), err: ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := ValidDest(tt.in)
			if tt.err == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.err)
		})
	}
}

func TestValidLocal(t *testing.T) {
	t.Parallel()
	require.True(t, ValidLocal("a.b_c=d-e/f0"))
	for _, bad := range []string{"", "A", "a b", "a@b", "a:b", "a+b", "ä", "a\x00"} {
		require.False(t, ValidLocal(bad), "%q", bad)
	}
}

func TestKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		kind Kind
		text string
		sig  byte
		sep  byte
	}{
		{name: "user", kind: KindUser, text: "user", sig: '@', sep: '@'},
		{name: "alias", kind: KindRoomAlias, text: "room alias", sig: '#', sep: ':'},
		{name: "room", kind: KindRoom, text: "room", sig: '!', sep: '@'},
		{name: "message", kind: KindMessage, text: "message", sig: '&', sep: ':'},
		{name: "msisdn", kind: KindMSISDN, text: "msisdn user", sig: '%', sep: ':'},
		{name: "email", kind: KindEmail, text: "email user", sig: '^', sep: ':'},
		{name: "zero", kind: 0, text: "kind(0)", sig: 0, sep: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.text, tt.kind.String())
			require.Equal(t, tt.sig, tt.kind.Sigil())
			require.Equal(t, tt.sep, tt.kind.Separator())
			if tt.sig != 0 {
				require.Equal(t, tt.kind, KindOf(tt.sig))
			}
		})
	}
}

func TestZeroID(t *testing.T) {
	t.Parallel()
	var id ID
	require.True(t, id.IsZero())
	require.Empty(t, id.String())
	require.Empty(t, id.AppendTo(nil))
}

func TestEmail(t *testing.T) {
	t.Parallel()
	id, err := Parse("^john_at_work_at_mail.example.com:localhost")
	require.NoError(t, err)
	addr, ok := id.Email()
	require.True(t, ok)
	require.Equal(t, "john_at_work@mail.example.com", addr)
	user, err := Parse("@bob@localhost")
	require.NoError(t, err)
	_, ok = user.Email()
	require.False(t, ok)
}
