package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "defaults", args: nil},
		{name: "zero gateways", args: []string{"-gateways", "0"}, wantErr: "-gateways 0"},
		{name: "too many routers", args: []string{"-routers", "17"}, wantErr: "-routers 17"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := parse(tc.args, &bytes.Buffer{})
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, config{binDir: "bin", stateDir: filepath.Join(".cache", "cluster"), gateways: 2, routers: 2, deliveries: 2, presences: 2, natsN: 3}, c)
		})
	}
}

// TestNATSClusterRoutes checks a message published on one node reaches a
// subscriber on another: the routes are up.
func TestNATSClusterRoutes(t *testing.T) {
	t.Parallel()
	nc, err := startNATSCluster(3, filepath.Join(t.TempDir(), "nats.log"))
	require.NoError(t, err)
	t.Cleanup(nc.shutdown)
	urls := strings.Split(nc.URL(), ",")
	require.Len(t, urls, 3)
	sub, err := nats.Connect(urls[0])
	require.NoError(t, err)
	defer sub.Close()
	pub, err := nats.Connect(urls[2])
	require.NoError(t, err)
	defer pub.Close()
	s, err := sub.SubscribeSync("ping")
	require.NoError(t, err)
	require.NoError(t, sub.Flush())
	// Interest crosses the route asynchronously: publish until it lands.
	require.Eventually(t, func() bool {
		_ = pub.Publish("ping", []byte("x"))
		_, err := s.NextMsg(50 * time.Millisecond)
		return err == nil
	}, 10*time.Second, 10*time.Millisecond)
}

func TestRedis(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		masters int
		scheme  string
	}{
		{name: "standalone", masters: 0, scheme: "redis://"},
		{name: "cluster", masters: 3, scheme: "redis+cluster://"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			rs, err := startRedis(t.Context(), dir, dir, tc.masters)
			require.NoError(t, err)
			stopped := false
			t.Cleanup(func() {
				if !stopped {
					_ = rs.stop()
				}
			})
			require.True(t, strings.HasPrefix(rs.URL(), tc.scheme), rs.URL())
			addrs := strings.Split(strings.TrimPrefix(rs.URL(), tc.scheme), ",")
			rc := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: addrs, IsClusterMode: tc.masters > 0})
			defer func() { _ = rc.Close() }()
			for _, k := range []string{"a", "b", "c", "d"} { // spread over the slots
				require.NoError(t, rc.Set(t.Context(), k, "v", 0).Err())
			}
			require.NoError(t, rs.stop())
			stopped = true
			for _, n := range rs.nodes {
				select {
				case <-n.exited:
				default:
					t.Fatalf("redis on %s still running", n.addr())
				}
			}
		})
	}
}

// TestClusterStartsAndStops builds the services, runs the whole cluster,
// checks every instance answers and endpoints.json names them, then stops
// it with SIGTERM-like cancellation and checks nothing is left running.
func TestClusterStartsAndStops(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the whole cluster")
	}
	t.Parallel()
	bin := t.TempDir()
	for _, svc := range []string{"presence", "delivery", "router", "gateway"} {
		cmd := exec.CommandContext(t.Context(), "go", "build", "-o", filepath.Join(bin, svc), //nolint:gosec // this repo's own packages
			"github.com/bachata-chat/bachata/services/"+svc+"/cmd/"+svc)
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Run(), "go build %s", svc)
	}
	state := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"bachata-cluster", "-bin", bin, "-dir", state}, func(string) string { return "" }, &out)
	}()
	var e Endpoints
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(filepath.Join(state, "endpoints.json"))
		return err == nil && json.Unmarshal(b, &e) == nil
	}, 60*time.Second, 50*time.Millisecond, "no endpoints.json; output:\n%s", &out)
	require.Len(t, e.Gateways, 2)
	require.Len(t, e.PIDs, 8, "two of each service")
	require.Len(t, strings.Split(e.NATS, ","), 3)
	logs, err := os.ReadDir(filepath.Join(state, "logs"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(logs), 12, "8 services, 3 NATS nodes, redis")

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(60 * time.Second):
		t.Fatal("cluster did not stop")
	}
	for _, pid := range e.PIDs {
		// Signal 0 only checks the process exists.
		require.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "pid %d still running", pid)
	}
	require.Contains(t, out.String(), "stopped; logs in")
}
