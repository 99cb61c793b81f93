package testkit

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRedisSurvivesKillWithAppendOnly(t *testing.T) {
	t.Parallel()
	r := StartRedis(t, RedisOptions{AppendOnly: true})
	c := r.Client()
	require.NoError(t, c.RPush(t.Context(), "q", "one").Err())
	r.Kill()
	r.Restart()
	got, err := c.LRange(t.Context(), "q", 0, -1).Result()
	require.NoError(t, err)
	require.Equal(t, []string{"one"}, got)
}

func TestNATSRestartKeepsURL(t *testing.T) {
	t.Parallel()
	n := StartNATS(t)
	before := n.URL()
	nc := n.Conn()
	n.Restart()
	require.Equal(t, before, n.URL())
	require.NoError(t, nc.Publish("x", []byte("y")))
}
