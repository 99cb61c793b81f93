package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/bachata-chat/bachata/libs/localsuite"
	"github.com/bachata-chat/bachata/libs/testkit"
	"github.com/stretchr/testify/require"
)

// binDir holds the service binaries built once for every test here.
var binDir string

const secret = "e2e-secret-at-least-sixteen-bytes"

// adminToken is the gateways' admin API token in these tests.
const adminToken = "e2e-admin-token-sixteen-bytes"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bachata-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	binDir = dir
	code := 1
	if err := build(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build services:", err)
	} else {
		code = m.Run()
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// build compiles the four services with the race detector, so the
// end-to-end runs also check the services for data races.
func build(dir string) error {
	for _, svc := range []string{"presence", "delivery", "router", "gateway"} {
		cmd := exec.Command("go", "build", "-race", "-o", filepath.Join(dir, svc),
			"github.com/bachata-chat/bachata/services/"+svc+"/cmd/"+svc)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build %s: %w", svc, err)
		}
	}
	return nil
}

// env is one running suite with the servers behind it.
type env struct {
	suite *localsuite.Suite
	redis *testkit.Redis
	nats  *testkit.NATS
}

// startSuite runs presence, delivery, router and the given number of
// gateways against a fresh redis-server (append-only) and NATS server.
func startSuite(t *testing.T, gateways int) *env {
	t.Helper()
	return startSuiteWith(t, func(c *localsuite.Config) { c.Gateways = gateways })
}

// startSuiteWith is startSuite with the suite's configuration adjusted.
func startSuiteWith(t *testing.T, adjust func(*localsuite.Config)) *env {
	t.Helper()
	r := testkit.StartRedis(t, testkit.RedisOptions{AppendOnly: true})
	n := testkit.StartNATS(t)
	logDir := t.TempDir()
	cfg := localsuite.Config{
		BinDir:     binDir,
		NATSURL:    n.URL(),
		RedisURL:   r.URL(),
		JWTSecret:  secret,
		AdminToken: adminToken,
		Gateways:   1,
		LogDir:     logDir,
		Env:        []string{"BACHATA_LOG_LEVEL=debug"},
	}
	adjust(&cfg)
	// Free ports are picked by listening on port 0 and closing again, so
	// another test's server can take one before a service binds it: a
	// start that failed is tried again on new ports, with its logs shown.
	s, err := localsuite.Start(t.Context(), cfg)
	for attempt := 1; err != nil && attempt < 3; attempt++ {
		t.Logf("suite start failed (attempt %d), trying again: %v", attempt, err)
		dumpLogs(t, cfg.LogDir)
		cfg.LogDir = t.TempDir()
		s, err = localsuite.Start(t.Context(), cfg)
	}
	require.NoError(t, err)
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			dumpLogs(t, cfg.LogDir)
		}
	})
	return &env{suite: s, redis: r, nats: n}
}

func dumpLogs(t *testing.T, dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		if len(b) > 8000 {
			b = b[len(b)-8000:]
		}
		t.Logf("---- %s (tail)\n%s", e.Name(), b)
	}
}

// gw returns the WebSocket address of gateway i (from 0).
func (e *env) gw(i int) string { return e.suite.Gateways()[i].Addr }
