package traffic

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/bachata-chat/bachata/libs/localsuite"
	"github.com/bachata-chat/bachata/libs/testkit"
	"github.com/stretchr/testify/require"
)

const suiteAdminToken = "traffic-admin-token-sixteen"

// startSuite builds the four services and runs them, two gateways and two
// delivery instances, against a fresh redis-server (append-only) and NATS.
func startSuite(t *testing.T) *localsuite.Suite {
	t.Helper()
	bin := t.TempDir()
	for _, svc := range []string{"presence", "delivery", "router", "gateway"} {
		cmd := exec.CommandContext(t.Context(), "go", "build", "-o", filepath.Join(bin, svc), //nolint:gosec // this repo's own packages
			"github.com/bachata-chat/bachata/services/"+svc+"/cmd/"+svc)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		require.NoError(t, cmd.Run(), "go build %s", svc)
	}
	r := testkit.StartRedis(t, testkit.RedisOptions{AppendOnly: true})
	n := testkit.StartNATS(t)
	logs := t.TempDir()
	cfg := localsuite.Config{
		BinDir: bin, NATSURL: n.URL(), RedisURL: r.URL(),
		JWTSecret: testSecret, AdminToken: suiteAdminToken,
		Gateways: 2, Deliveries: 2, LogDir: logs,
		// The per-user rate limit (20/s) would refuse a load run.
		Env: []string{"BACHATA_RATE_LIMIT=0"},
	}
	s, err := localsuite.Start(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			entries, _ := os.ReadDir(logs)
			for _, e := range entries {
				b, _ := os.ReadFile(filepath.Join(logs, e.Name()))
				t.Logf("---- %s (tail)\n%s", e.Name(), b[max(0, len(b)-4000):])
			}
		}
	})
	return s
}

// TestAgainstSuite runs the scenarios for a moment against a real suite:
// every message that got its 100 must be delivered, and none lost.
func TestAgainstSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the whole suite")
	}
	t.Parallel()
	s := startSuite(t)
	gws := ""
	for i, g := range s.Gateways() {
		if i > 0 {
			gws += ","
		}
		gws += "ws://" + g.Addr + "/ws"
	}
	t.Run("direct", func(t *testing.T) {
		c := parse(t, "direct", "-gateways", gws, "-secret", testSecret, "-pairs", "10", "-rate", "200", "-duration", "2s", "-drain", "20s")
		var out bytes.Buffer
		rep, err := Run(t.Context(), c, &out)
		t.Log("\n" + out.String())
		require.NoError(t, err)
		require.Positive(t, rep.Sent)
		require.Equal(t, rep.Sent, rep.Accepted, "every message accepted")
		require.Zero(t, rep.Lost)
		require.Equal(t, rep.Accepted, rep.Delivered, "every accepted message delivered")
		require.Equal(t, rep.Accepted, rep.Receipts, "every delivered message receipted")
		require.Zero(t, rep.DupReceipts)
		require.Zero(t, rep.Unknown)
	})
	t.Run("group", func(t *testing.T) {
		admin := "http://" + s.Gateways()[0].HTTPAddr
		c := parse(t, "group", "-gateways", gws, "-admin", admin, "-admin-token", suiteAdminToken, "-secret", testSecret,
			"-members", "50", "-rate", "20", "-duration", "2s", "-drain", "20s")
		var out bytes.Buffer
		rep, err := Run(t.Context(), c, &out)
		t.Log("\n" + out.String())
		require.NoError(t, err)
		require.Positive(t, rep.Sent)
		require.Equal(t, rep.Sent, rep.Accepted, "every message accepted")
		require.Zero(t, rep.Lost)
		require.Equal(t, rep.Accepted, rep.Delivered, "every accepted message reached every member")
		require.Equal(t, rep.Accepted*49, rep.Deliveries-rep.Duplicates)
		require.Equal(t, rep.Accepted, rep.Receipts)
	})
}
