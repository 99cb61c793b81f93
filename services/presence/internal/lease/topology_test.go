package lease

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/bachata-chat/bachata/libs/testkit"
)

// startClusterServers is startServers with Redis in cluster mode: one node
// owning every slot, reached through a cluster client. Redis then refuses
// any script or transaction whose keys span slots, so the tests that run
// here prove the key layout is Cluster safe.
func startClusterServers(t *testing.T) *servers {
	t.Helper()
	r := testkit.StartRedis(t, testkit.RedisOptions{Args: []string{"--cluster-enabled", "yes"}})
	node := r.Client()
	require.NoError(t, node.Do(t.Context(), "CLUSTER", "ADDSLOTSRANGE", "0", "16383").Err())
	require.Eventually(t, func() bool {
		info, err := node.ClusterInfo(t.Context()).Result()
		return err == nil && strings.Contains(info, "cluster_state:ok")
	}, waitFor, 10*time.Millisecond)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{r.Addr()}})
	t.Cleanup(func() { _ = c.Close() })
	return &servers{redis: r, nats: testkit.StartNATS(t), rdb: c}
}

// topologies are the Redis setups the scenario tests run against: a
// redis-server, Redis Cluster, and the embedded store of `make run`.
var topologies = []struct {
	name  string
	start func(t *testing.T) *servers
}{
	{name: "standalone", start: startServers},
	{name: "cluster", start: startClusterServers},
	{name: "embedded", start: startEmbeddedServers},
}

// forEachTopology runs test once per Redis topology, in parallel.
func forEachTopology(t *testing.T, test func(t *testing.T, srv *servers)) {
	t.Helper()
	for _, topo := range topologies {
		t.Run(topo.name, func(t *testing.T) {
			t.Parallel()
			test(t, topo.start(t))
		})
	}
}

// TestClusterTopologyRefusesCrossSlot guards the cluster topology itself: if
// Redis accepted scripts spanning slots, passing there would prove nothing.
func TestClusterTopologyRefusesCrossSlot(t *testing.T) {
	t.Parallel()
	srv := startClusterServers(t)
	err := srv.rdb.Eval(t.Context(), "return 1", []string{"{a}:x", "{b}:x"}).Err()
	require.ErrorContains(t, err, "CROSSSLOT")
	require.NoError(t, srv.rdb.Eval(t.Context(), "return 1", []string{"{a}:x", "{a}:y"}).Err())
}
