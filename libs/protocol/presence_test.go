package protocol

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParsePresenceUsers(t *testing.T) {
	t.Parallel()
	users, err := ParsePresenceUsers([]byte(`{"users":["@bob@localhost","carol"],"other":1}`))
	require.NoError(t, err)
	require.Equal(t, []string{"@bob@localhost", "carol"}, users)

	many := `{"users":["u"` + strings.Repeat(`,"u"`, MaxPresenceUsers) + `]}`
	for _, bad := range []string{``, `[]`, `{}`, `{"users":null}`, `{"users":[]}`, `{"users":"bob"}`, `{"users":[1]}`, `{"users":{"a":1}}`, many} {
		_, err := ParsePresenceUsers([]byte(bad))
		var e *Error
		require.True(t, errors.As(err, &e), "%s: %v", bad, err)
		require.Equal(t, CodeInvalidPresence, e.Code, bad)
	}
}

func TestAppendPresence(t *testing.T) {
	t.Parallel()
	require.Equal(t, `{"type":"presence","data":{"user":"@bob@localhost","status":"online","lastSeen":1700000000400}}`,
		string(AppendPresence(nil, "@bob@localhost", true, 1700000000400)))
	require.Equal(t, `{"type":"presence","data":{"user":"@c\"x@localhost","status":"offline","lastSeen":0}}`,
		string(AppendPresence(nil, `@c"x@localhost`, false, 0)))
}
