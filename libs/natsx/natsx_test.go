package natsx

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestUserToken(t *testing.T) {
	t.Parallel()
	subjectSafe := regexp.MustCompile(`^[0-9a-f]{32}$`)
	tests := []struct {
		name string
		user string
	}{
		{name: "plain", user: "@alice@localhost"},
		{name: "dots and wildcards", user: "@a.b*>@c.d"},
		{name: "unicode", user: "@álvaro@例え.jp"},
		{name: "spaces", user: "@ x @ y "},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		tok := UserToken(tt.user)
		require.Regexp(t, subjectSafe, tok, tt.name)
		require.Equal(t, tok, UserToken(tt.user), "%s: deterministic", tt.name)
		require.NotContains(t, seen, tok, "%s collides with %s", tt.name, seen[tok])
		seen[tok] = tt.name
	}
	// A fixed vector of the documented encoding (printf '%s' '@alice@localhost'
	// | sha256sum | cut -c1-32), so a client of another language can be checked.
	require.Equal(t, "76abc4e6af5d74e2480b95e69fc8718e", UserToken("@alice@localhost"))
}
