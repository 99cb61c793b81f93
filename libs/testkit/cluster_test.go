package testkit

import (
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/bachata-chat/bachata/libs/redisx"
)

func TestRedisClusterSpreadsHashTagsAndRunsScripts(t *testing.T) {
	t.Parallel()
	rc := StartRedisCluster(t, RedisClusterOptions{})
	require.Len(t, rc.Addrs(), 3)
	c := rc.Client()
	ctx := t.Context()

	// {a}, {b} and {c} hash to slots 15495, 3300 and 7365: one in each
	// node's third of the slots.
	keys := []string{"{a}k", "{b}k", "{c}k"}
	var owners []string
	for _, k := range keys {
		require.NoError(t, c.Set(ctx, k, "v", 0).Err())
		m, err := c.MasterForKey(ctx, k)
		require.NoError(t, err)
		owners = append(owners, m.Options().Addr)
	}
	slices.Sort(owners)
	require.Equal(t, slices.Sorted(slices.Values(rc.Addrs())), owners, "each hash tag on its own node")
	for _, addr := range rc.Addrs() {
		node := redis.NewClient(&redis.Options{Addr: addr})
		n, err := node.DBSize(ctx).Result()
		require.NoError(t, node.Close())
		require.NoError(t, err)
		require.EqualValues(t, 1, n, "keys stored on %s", addr)
	}

	const script = `
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
return redis.call('MGET', KEYS[1], KEYS[2])`
	got, err := c.Eval(ctx, script, []string{"{user:1}:a", "{user:1}:b"}, "x", "y").StringSlice()
	require.NoError(t, err)
	require.Equal(t, []string{"x", "y"}, got)
	err = c.Eval(ctx, script, []string{"{a}k", "{b}k"}, "x", "y").Err()
	require.Error(t, err)
	require.True(t, strings.HasPrefix(err.Error(), "CROSSSLOT"), "script over two nodes: %v", err)

	u, err := redisx.Open(ctx, rc.URL())
	require.NoError(t, err)
	t.Cleanup(func() { _ = u.Close() })
	require.IsType(t, &redis.ClusterClient{}, u)
	v, err := u.Get(ctx, "{user:1}:b").Result()
	require.NoError(t, err)
	require.Equal(t, "y", v)
}

func TestRedisClusterNodeSurvivesKillWithAppendOnly(t *testing.T) {
	t.Parallel()
	rc := StartRedisCluster(t, RedisClusterOptions{AppendOnly: true})
	c := rc.Client()
	ctx := t.Context()
	require.NoError(t, c.RPush(ctx, "{q}", "one").Err())
	m, err := c.MasterForKey(ctx, "{q}")
	require.NoError(t, err)
	i := slices.Index(rc.Addrs(), m.Options().Addr)
	require.GreaterOrEqual(t, i, 0)

	rc.Kill(i)
	rc.Restart(i)
	got, err := c.LRange(ctx, "{q}", 0, -1).Result()
	require.NoError(t, err)
	require.Equal(t, []string{"one"}, got)
}
