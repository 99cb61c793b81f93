package protocol

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSkipPlain compares the eight-bytes-at-a-time scan with a plain loop
// for every byte value at every offset of a 16-byte window.
func TestSkipPlain(t *testing.T) {
	t.Parallel()
	naive := func(b []byte, i int) int {
		for ; i < len(b); i++ {
			if b[i] < 0x20 || b[i] == '"' || b[i] == '\\' {
				return i
			}
		}
		return i
	}
	for c := range 256 {
		for pos := range 16 {
			b := []byte(strings.Repeat("a\xc3\xa9\x7f\xff ", 4))[:16]
			b[pos] = byte(c)
			for start := range 3 {
				require.Equal(t, naive(b, start), skipPlain(b, start), "byte %#x at %d from %d", c, pos, start)
			}
		}
	}
}

func TestParseInt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want int64
		ok   bool
	}{
		{name: "zero", in: "0", want: 0, ok: true},
		{name: "minus zero", in: "-0", want: 0, ok: true},
		{name: "max", in: "9223372036854775807", want: 1<<63 - 1, ok: true},
		{name: "min", in: "-9223372036854775808", want: -1 << 63, ok: true},
		{name: "max plus one", in: "9223372036854775808", ok: false},
		{name: "min minus one", in: "-9223372036854775809", ok: false},
		{name: "huge", in: "123456789012345678901234567890", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := parseInt([]byte(tt.in))
			require.Equal(t, tt.ok, ok)
			if ok {
				require.Equal(t, tt.want, got)
			}
		})
	}
}
