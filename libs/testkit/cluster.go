package testkit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisClusterOptions tunes a test Redis Cluster.
type RedisClusterOptions struct {
	// Masters is the number of master nodes; 0 means 3. The cluster has no
	// replicas.
	Masters int
	// AppendOnly turns on AOF on every node, as in RedisOptions.
	AppendOnly bool
}

// RedisCluster is a Redis Cluster of redis-server processes owned by one
// test: masters only, the hash slots split evenly between them.
type RedisCluster struct {
	t     testing.TB
	nodes []*Redis
}

const (
	clusterSlots = 16384
	// clusterBusOffset is how far above its client port a node listens for
	// the cluster bus.
	clusterBusOffset = 10000
	// clusterReadyTimeout bounds how long forming or healing the cluster
	// may take.
	clusterReadyTimeout = 20 * time.Second
)

// StartRedisCluster starts opts.Masters redis-server processes in cluster
// mode on free 127.0.0.1 ports, each with its own data directory, assigns
// each an even share of the hash slots, joins them into one cluster and
// waits until every node sees the whole cluster healthy. Everything is
// stopped when the test ends.
func StartRedisCluster(t testing.TB, opts RedisClusterOptions) *RedisCluster {
	t.Helper()
	requireRedisBinary(t)
	n := opts.Masters
	if n == 0 {
		n = 3
	}
	if n < 0 || n > clusterSlots {
		t.Fatalf("testkit: redis cluster with %d masters: want 1 to %d", n, clusterSlots)
	}
	nodeOpts := RedisOptions{AppendOnly: opts.AppendOnly, Args: []string{
		"--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf", // in the node's own --dir
		"--cluster-node-timeout", "2000",
	}}
	c := &RedisCluster{t: t}
	for i := range n {
		// Nodes start one after another, so each port pick sees the ports
		// of the nodes already running as taken.
		r, err := startRedis(t, nodeOpts, freeClusterPort)
		if err != nil {
			t.Fatalf("testkit: start redis cluster node %d of %d: %v", i+1, n, err)
		}
		c.nodes = append(c.nodes, r)
	}
	if err := c.form(); err != nil {
		t.Fatalf("testkit: form redis cluster: %v%s", err, c.logTails())
	}
	c.waitHealthy()
	return c
}

// Addrs are the nodes' host:port addresses, in node order.
func (c *RedisCluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, r := range c.nodes {
		addrs[i] = r.Addr()
	}
	return addrs
}

// URL is a redis+cluster:// URL listing every node, the form redisx.Open
// takes.
func (c *RedisCluster) URL() string {
	return "redis+cluster://" + strings.Join(c.Addrs(), ",")
}

// Client returns a cluster client seeded with every node, closed when the
// test ends.
func (c *RedisCluster) Client() *redis.ClusterClient {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	c.t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// Kill stops node i with SIGKILL, as a crash would, and returns at once:
// the other nodes notice after the node timeout (2s), and the cluster
// refuses commands until the node is back, since no replica covers its
// slots.
func (c *RedisCluster) Kill(i int) {
	c.t.Helper()
	c.node(i).Kill()
}

// Restart starts node i again on the same port and data directory, after
// Kill or while running (then it kills first). The node keeps its identity
// and slots, and its data if AppendOnly is set. When every node is running,
// Restart waits until all of them see the cluster healthy again.
func (c *RedisCluster) Restart(i int) {
	c.t.Helper()
	c.node(i).Restart()
	for _, r := range c.nodes {
		if !r.running() {
			return
		}
	}
	c.waitHealthy()
}

func (c *RedisCluster) node(i int) *Redis {
	c.t.Helper()
	if i < 0 || i >= len(c.nodes) {
		c.t.Fatalf("testkit: redis cluster node %d: the cluster has nodes 0 to %d", i, len(c.nodes)-1)
	}
	return c.nodes[i]
}

// form does what `redis-cli --cluster create` does for masters only: it
// gives each node a distinct config epoch and an even share of the slots,
// and has the first node meet the others.
func (c *RedisCluster) form() error {
	ctx, cancel := context.WithTimeout(context.Background(), clusterReadyTimeout)
	defer cancel()
	n := len(c.nodes)
	for i, r := range c.nodes {
		if err := func() error {
			rc := redis.NewClient(&redis.Options{Addr: r.Addr()})
			defer func() { _ = rc.Close() }()
			if err := rc.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err(); err != nil {
				return fmt.Errorf("cluster set-config-epoch: %w", err)
			}
			lo, hi := i*clusterSlots/n, (i+1)*clusterSlots/n-1
			if err := rc.ClusterAddSlotsRange(ctx, lo, hi).Err(); err != nil {
				return fmt.Errorf("cluster addslotsrange %d %d: %w", lo, hi, err)
			}
			return nil
		}(); err != nil {
			return fmt.Errorf("node %s: %w", r.Addr(), err)
		}
	}
	first := redis.NewClient(&redis.Options{Addr: c.nodes[0].Addr()})
	defer func() { _ = first.Close() }()
	for _, r := range c.nodes[1:] {
		if err := first.ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(r.Port())).Err(); err != nil {
			return fmt.Errorf("node %s: cluster meet %s: %w", c.nodes[0].Addr(), r.Addr(), err)
		}
	}
	return nil
}

// waitHealthy waits until every node reports the cluster healthy, and fails
// the test with each node's view and log if that takes too long.
func (c *RedisCluster) waitHealthy() {
	c.t.Helper()
	clients := make([]*redis.Client, len(c.nodes))
	for i, r := range c.nodes {
		clients[i] = redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1})
	}
	defer func() {
		for _, rc := range clients {
			_ = rc.Close()
		}
	}()
	want := c.Addrs()
	deadline := time.Now().Add(clusterReadyTimeout)
	for {
		var errs []error
		for i, rc := range clients {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			if err := checkClusterNode(ctx, rc, want); err != nil {
				errs = append(errs, fmt.Errorf("node %d (%s): %w", i, c.nodes[i].Addr(), err))
			}
			cancel()
		}
		if len(errs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("testkit: redis cluster not healthy after %v:\n%v%s", clusterReadyTimeout, errors.Join(errs...), c.logTails())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkClusterNode returns nil when the node behind rc reports the cluster
// healthy: state ok, every slot served, and exactly the nodes at addrs
// known, each a connected master that is not failing.
func checkClusterNode(ctx context.Context, rc *redis.Client, addrs []string) error {
	info, err := rc.ClusterInfo(ctx).Result()
	if err != nil {
		return fmt.Errorf("cluster info: %w", err)
	}
	fields := map[string]string{}
	for line := range strings.Lines(info) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			fields[k] = v
		}
	}
	n := strconv.Itoa(len(addrs))
	var wrong []string
	for _, kv := range [][2]string{
		{"cluster_state", "ok"},
		{"cluster_slots_ok", strconv.Itoa(clusterSlots)},
		{"cluster_known_nodes", n},
		{"cluster_size", n},
	} {
		if got := fields[kv[0]]; got != kv[1] {
			wrong = append(wrong, fmt.Sprintf("%s:%s (want %s)", kv[0], got, kv[1]))
		}
	}
	if len(wrong) > 0 {
		return fmt.Errorf("cluster info: %s", strings.Join(wrong, ", "))
	}
	nodes, err := rc.ClusterNodes(ctx).Result()
	if err != nil {
		return fmt.Errorf("cluster nodes: %w", err)
	}
	var seen []string
	for line := range strings.Lines(strings.TrimSpace(nodes)) {
		// <id> <ip:port@cport> <flags> <master> <ping-sent> <pong-recv> <config-epoch> <link-state> <slot>...
		f := strings.Fields(line)
		if len(f) < 8 {
			return fmt.Errorf("cluster nodes: malformed line %q", line)
		}
		addr, _, _ := strings.Cut(f[1], "@")
		flags := strings.Split(f[2], ",")
		switch {
		case !slices.Contains(flags, "master"):
			return fmt.Errorf("cluster nodes: %s is not a master: %s", addr, f[2])
		case slices.ContainsFunc(flags, func(fl string) bool {
			return fl == "fail" || fl == "fail?" || fl == "handshake" || fl == "noaddr"
		}):
			return fmt.Errorf("cluster nodes: %s is %s", addr, f[2])
		case f[7] != "connected":
			return fmt.Errorf("cluster nodes: %s link is %s", addr, f[7])
		}
		seen = append(seen, addr)
	}
	slices.Sort(seen)
	sorted := slices.Sorted(slices.Values(addrs))
	if !slices.Equal(seen, sorted) {
		return fmt.Errorf("cluster nodes: sees %v, want %v", seen, sorted)
	}
	return nil
}

// logTails is the last log lines of every node, for failure messages.
func (c *RedisCluster) logTails() string {
	var b strings.Builder
	for i, r := range c.nodes {
		fmt.Fprintf(&b, "\nnode %d (%s) log:\n%s", i, r.Addr(), strings.TrimRight(r.logTail(5), "\n"))
	}
	return b.String()
}

// freeClusterPort returns a port on 127.0.0.1 that was free a moment ago
// and whose cluster bus port, 10000 above it, was free too.
func freeClusterPort() (int, error) {
	lastErr := errors.New("no attempt")
	for range 100 {
		port, err := FreePort()
		if err != nil {
			return 0, err
		}
		bus := port + clusterBusOffset
		if bus > 65535 {
			lastErr = fmt.Errorf("port %d: bus port %d is out of range", port, bus)
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(bus)))
		if err != nil {
			lastErr = fmt.Errorf("port %d: bus port: %w", port, err)
			continue
		}
		_ = l.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no free port with a free bus port: %w", lastErr)
}
