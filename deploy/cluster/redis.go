package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// redisBinary is looked up on PATH.
	redisBinary = "redis-server"
	// redisReady bounds the wait for a node to answer and for a cluster
	// to form.
	redisReady = 20 * time.Second
	// redisStop bounds a node's orderly exit before it is killed.
	redisStop = 10 * time.Second
	// clusterSlots is Redis Cluster's hash slot count; clusterBusOffset is
	// how far above its client port a node listens for the cluster bus.
	clusterSlots     = 16384
	clusterBusOffset = 10000
)

// redisNode is one redis-server process.
type redisNode struct {
	port   int
	cmd    *exec.Cmd
	exited chan struct{}
}

func (n *redisNode) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port)) }

// redisSet is one append-only redis-server, or the masters of a Redis
// Cluster.
type redisSet struct {
	nodes   []*redisNode
	cluster bool
}

// startRedis starts one append-only redis-server, or with masters > 0 a
// Redis Cluster of that many masters formed the way `redis-cli --cluster
// create` forms one (the approach of libs/testkit's cluster.go): each node
// gets a config epoch and an even share of the slots, and the first meets
// the others.
func startRedis(ctx context.Context, state, logDir string, masters int) (*redisSet, error) {
	if _, err := exec.LookPath(redisBinary); err != nil {
		return nil, fmt.Errorf("%s not found on PATH (make deps installs it): %w", redisBinary, err)
	}
	rs := &redisSet{cluster: masters > 0}
	n := max(masters, 1)
	for i := range n {
		name := "redis"
		if rs.cluster {
			name = fmt.Sprintf("redis-%d", i+1)
		}
		node, err := startRedisNode(ctx, filepath.Join(state, name), filepath.Join(logDir, name+".log"), rs.cluster)
		if err != nil {
			_ = rs.stop()
			return nil, err
		}
		rs.nodes = append(rs.nodes, node)
	}
	if rs.cluster {
		if err := rs.form(ctx); err != nil {
			_ = rs.stop()
			return nil, err
		}
	}
	return rs, nil
}

func startRedisNode(ctx context.Context, dir, logFile string, cluster bool) (*redisNode, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("redis dir: %w", err)
	}
	port, err := freeRedisPort(cluster)
	if err != nil {
		return nil, err
	}
	args := []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--appendonly", "yes", "--save", "", "--logfile", logFile, "--daemonize", "no",
	}
	if cluster {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
	}
	// The process outlives ctx, which only bounds the start; stop ends it.
	cmd := exec.CommandContext(context.WithoutCancel(ctx), redisBinary, args...) //nolint:gosec // redis-server with our own arguments
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	n := &redisNode{port: port, cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(n.exited)
	}()
	rc := redis.NewClient(&redis.Options{Addr: n.addr(), MaxRetries: -1})
	defer func() { _ = rc.Close() }()
	if err := poll(ctx, n.exited, func(ctx context.Context) error { return rc.Ping(ctx).Err() }); err != nil {
		n.stop()
		return nil, fmt.Errorf("redis-server on %s (log %s): %w", n.addr(), logFile, err)
	}
	return n, nil
}

// freeRedisPort picks a free port; for a cluster node, one whose bus port
// (port+10000) is free as well.
func freeRedisPort(cluster bool) (int, error) {
	for range 50 {
		ports, err := freePorts(1)
		if err != nil {
			return 0, err
		}
		p := ports[0]
		if !cluster {
			return p, nil
		}
		if p+clusterBusOffset > 65535 {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+clusterBusOffset))) //nolint:noctx // a moment's listen to check a port
		if err == nil {
			_ = l.Close()
			return p, nil
		}
	}
	return 0, errors.New("no free port pair for a redis cluster node")
}

func (rs *redisSet) form(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, redisReady)
	defer cancel()
	n := len(rs.nodes)
	clients := make([]*redis.Client, n)
	for i, node := range rs.nodes {
		clients[i] = redis.NewClient(&redis.Options{Addr: node.addr(), MaxRetries: -1})
		defer func() { _ = clients[i].Close() }()
	}
	for i, rc := range clients {
		if err := rc.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err(); err != nil {
			return fmt.Errorf("redis node %s: cluster set-config-epoch: %w", rs.nodes[i].addr(), err)
		}
		lo, hi := i*clusterSlots/n, (i+1)*clusterSlots/n-1
		if err := rc.ClusterAddSlotsRange(ctx, lo, hi).Err(); err != nil {
			return fmt.Errorf("redis node %s: cluster addslotsrange %d %d: %w", rs.nodes[i].addr(), lo, hi, err)
		}
	}
	for _, node := range rs.nodes[1:] {
		if err := clients[0].ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(node.port)).Err(); err != nil {
			return fmt.Errorf("redis cluster meet %s: %w", node.addr(), err)
		}
	}
	for i, rc := range clients {
		err := poll(ctx, rs.nodes[i].exited, func(ctx context.Context) error {
			info, err := rc.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(n)+"\r") {
				return errors.New("cluster not healthy yet")
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("redis cluster node %s: %w", rs.nodes[i].addr(), err)
		}
	}
	return nil
}

// poll calls f until it succeeds, the process exits or redisReady passes.
func poll(ctx context.Context, exited <-chan struct{}, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, redisReady)
	defer cancel()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		actx, acancel := context.WithTimeout(ctx, time.Second)
		err := f(actx)
		acancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("exited (see its log)")
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w", err)
		case <-tick.C:
		}
	}
}

// URL is what REDIS_URL takes: redis://host:port, or
// redis+cluster://host:port,… listing every master.
func (rs *redisSet) URL() string {
	if !rs.cluster {
		return "redis://" + rs.nodes[0].addr()
	}
	addrs := make([]string, len(rs.nodes))
	for i, n := range rs.nodes {
		addrs[i] = n.addr()
	}
	return "redis+cluster://" + strings.Join(addrs, ",")
}

// stop ends every node: SIGTERM (Redis then flushes its append-only file),
// and SIGKILL after redisStop.
func (rs *redisSet) stop() error {
	var errs []error
	for _, n := range rs.nodes {
		if !n.stop() {
			errs = append(errs, fmt.Errorf("redis-server on %s killed after %s", n.addr(), redisStop))
		}
	}
	return errors.Join(errs...)
}

// stop reports whether the node exited on SIGTERM in time.
func (n *redisNode) stop() bool {
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(redisStop)
	defer t.Stop()
	select {
	case <-n.exited:
		return true
	case <-t.C:
		_ = n.cmd.Process.Kill()
		<-n.exited
		return false
	}
}
