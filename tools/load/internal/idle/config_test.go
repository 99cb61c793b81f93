package idle

import (
	"bytes"
	"flag"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/bachata-chat/bachata/tools/load/internal/loopback"
	"github.com/bachata-chat/bachata/tools/load/internal/usage"
	"github.com/stretchr/testify/require"
)

const testSecret = "0123456789abcdef"

func env(secret string) func(string) string {
	return func(k string) string {
		if k == "BACHATA_JWT_SECRET" {
			return secret
		}
		return ""
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		secret  string
		check   func(t *testing.T, c Config)
		wantErr []string
		isErr   error
	}{
		{
			name:   "defaults",
			secret: testSecret,
			check: func(t *testing.T, c Config) {
				require.Equal(t, "ws://127.0.0.1:8080/ws", c.Gateway.String())
				require.Equal(t, 1000, c.Conns)
				require.Len(t, c.Sources, 8)
				require.Equal(t, testSecret, c.Secret)
				require.GreaterOrEqual(t, c.Procs, 1)
				require.Equal(t, -1, c.WorkerFirst)
			},
		},
		{
			name: "everything",
			args: []string{
				"-gateway", "ws://localhost:18080/ws", "-conns", "5000", "-sources", "127.0.0.2-127.0.0.20",
				"-secret", "another-secret-of-16", "-hold", "3m", "-settle", "1s", "-gc-wait", "0", "-parallel", "50",
				"-procs", "2", "-gateway-pid", "1234", "-gateway-metrics", "http://127.0.0.1:18081/metrics",
			},
			secret: testSecret,
			check: func(t *testing.T, c Config) {
				require.Equal(t, "ws://127.0.0.1:18080/ws", c.Gateway.String())
				require.Len(t, c.Sources, 19)
				require.Equal(t, "another-secret-of-16", c.Secret, "the flag wins over the environment")
				require.Equal(t, 3*time.Minute, c.Hold)
				require.Equal(t, 2, c.Procs)
				require.Equal(t, 1234, c.GatewayPID)
				require.Equal(t, "http://127.0.0.1:18081/metrics", c.MetricsURL)
			},
		},
		{name: "remote gateway", args: []string{"-gateway", "ws://198.51.100.1:8080/ws"}, secret: testSecret, isErr: loopback.ErrNotLoopback},
		{name: "remote metrics", args: []string{"-gateway-metrics", "http://example.com:8081/metrics"}, secret: testSecret, isErr: loopback.ErrNotLoopback},
		{name: "remote source", args: []string{"-sources", "10.1.1.1"}, secret: testSecret, isErr: loopback.ErrNotLoopback},
		{name: "wss is not loopback traffic", args: []string{"-gateway", "wss://127.0.0.1:8443/ws"}, secret: testSecret, wantErr: []string{"-gateway"}},
		{
			name:    "every problem at once",
			args:    []string{"-conns", "0", "-hold", "0s", "-parallel", "0", "-procs", "-1"},
			wantErr: []string{"-conns 0", "-secret", "-hold 0s", "-parallel 0", "-procs -1"},
			isErr:   usage.ErrUsage,
		},
		{name: "too many connections", args: []string{"-conns", "2000000"}, secret: testSecret, wantErr: []string{"-conns"}},
		{name: "stray argument", args: []string{"extra"}, secret: testSecret, wantErr: []string{"unexpected argument"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var usage bytes.Buffer
			c, err := ParseFlags(tt.args, env(tt.secret), &usage)
			if tt.check != nil {
				require.NoError(t, err)
				tt.check(t, c)
				return
			}
			require.Error(t, err)
			if tt.isErr != nil {
				require.ErrorIs(t, err, tt.isErr)
			}
			for _, w := range tt.wantErr {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestParseFlagsHelp(t *testing.T) {
	t.Parallel()
	var usage bytes.Buffer
	_, err := ParseFlags([]string{"-h"}, env(""), &usage)
	require.ErrorIs(t, err, flag.ErrHelp)
	require.Contains(t, usage.String(), "-gateway-metrics")
}

func TestPlan(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		conns     int
		sources   int
		procs     int
		fds       int
		ports     int
		wantProcs int
		wantErr   string
	}{
		{name: "fits one process", conns: 19000, sources: 1, fds: 20000, ports: 28232, wantProcs: 1},
		{name: "50k needs three at 20000 descriptors", conns: 50000, sources: 2, fds: 20000, ports: 28232, wantProcs: 3},
		{name: "explicit split", conns: 19000, sources: 19, procs: 2, fds: 20000, ports: 28232, wantProcs: 2},
		{name: "never more processes than connections", conns: 3, sources: 1, procs: 8, fds: 20000, ports: 28232, wantProcs: 3},
		{name: "explicit split too small", conns: 50000, sources: 4, procs: 2, fds: 20000, ports: 28232, wantErr: "use -procs 3"},
		{name: "one source runs out of ports", conns: 30000, sources: 1, fds: 1 << 20, ports: 28232, wantErr: "give more -sources"},
		{name: "no room at all", conns: 10, sources: 1, fds: 10, ports: 28232, wantErr: "leaves no room"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Config{Conns: tt.conns, Procs: tt.procs}
			c.Sources = make([]netip.Addr, tt.sources) // only the count matters
			err := c.plan(tt.fds, tt.ports)
			if tt.wantErr != "" {
				require.ErrorIs(t, err, usage.ErrUsage)
				require.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantProcs, c.Procs)
		})
	}
}

func TestShareCoversEveryUserOnce(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ conns, procs int }{{conns: 10, procs: 3}, {conns: 50000, procs: 3}, {conns: 7, procs: 7}, {conns: 19000, procs: 2}} {
		c := Config{Conns: tt.conns, Procs: tt.procs}
		next := 0
		for i := range tt.procs {
			first, n := c.share(i)
			require.Equal(t, next, first)
			require.Positive(t, n)
			next += n
		}
		require.Equal(t, tt.conns, next)
	}
}

func TestWorkerArgsParseBack(t *testing.T) {
	t.Parallel()
	c, err := ParseFlags([]string{"-conns", "10", "-procs", "3", "-sources", "127.0.0.2,127.0.0.7-127.0.0.8", "-hold", "90s"}, env(testSecret), &bytes.Buffer{})
	require.NoError(t, err)
	args := c.workerArgs(1)
	require.Equal(t, "idle", args[0])
	require.NotContains(t, strings.Join(args, " "), testSecret, "the secret never goes on a command line")
	w, err := ParseFlags(args[1:], env(testSecret), &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, 4, w.WorkerFirst)
	require.Equal(t, 3, w.Conns)
	require.Equal(t, c.Sources, w.Sources)
	require.Equal(t, c.Hold, w.Hold)
	require.Equal(t, c.Gateway.String(), w.Gateway.String())
}
