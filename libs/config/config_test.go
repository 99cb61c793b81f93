package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPrecedenceAndErrors(t *testing.T) {
	t.Parallel()
	env := map[string]string{"B_NAME": "from-env", "B_N": "7", "B_D": "nope", "B_B": "maybe"}
	tests := []struct {
		name     string
		args     []string
		wantName string
		wantN    int
		wantErrs []string
		// badFlag: the flag package leaves values undefined after a parse error.
		badFlag bool
	}{
		{name: "env over default", args: nil, wantName: "from-env", wantN: 7, wantErrs: []string{"B_D", "B_B"}},
		{name: "flag over env", args: []string{"-name", "from-flag", "-n", "9"}, wantName: "from-flag", wantN: 9, wantErrs: []string{"B_D"}},
		{name: "bad flag", args: []string{"-n", "x"}, wantErrs: []string{"-n"}, badFlag: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := New("t", func(k string) string { return env[k] })
			var (
				name string
				n    int
				d    time.Duration
				b    bool
			)
			s.String(&name, "name", "B_NAME", "def", "a name")
			s.Int(&n, "n", "B_N", 1, "a number")
			s.Duration(&d, "d", "B_D", time.Second, "a duration")
			s.Bool(&b, "b", "B_B", false, "a switch")
			err := s.Parse(tt.args)
			require.Error(t, err)
			for _, w := range tt.wantErrs {
				require.ErrorContains(t, err, w)
			}
			if tt.badFlag {
				return
			}
			require.Equal(t, tt.wantName, name)
			require.Equal(t, tt.wantN, n)
		})
	}
}
