package e2e

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bachata-chat/bachata/libs/embedredis/embedredistest"
	"github.com/bachata-chat/bachata/libs/localsuite"
	"github.com/bachata-chat/bachata/libs/testkit"
)

// TestQueuedMessageSurvivesARestartOnTheEmbeddedStore is `make run` on a
// machine without Redis: the suite on the embedded store, a message queued
// for an offline device, the whole suite stopped (the services and NATS shut
// down, the store killed as a crash would) and started again on the same
// data. The device gets the message when it connects, and the sender its
// 300.
func TestQueuedMessageSurvivesARestartOnTheEmbeddedStore(t *testing.T) {
	t.Parallel()
	store := embedredistest.Start(t)
	nats := testkit.StartNATS(t)
	start := func() *localsuite.Suite {
		t.Helper()
		logDir := t.TempDir()
		cfg := localsuite.Config{
			BinDir: binDir, NATSURL: nats.URL(), RedisURL: store.URL(),
			JWTSecret: secret, AdminToken: adminToken, Gateways: 1, LogDir: logDir,
			Env: []string{"BACHATA_LOG_LEVEL=debug"},
		}
		s, err := localsuite.Start(t.Context(), cfg)
		for attempt := 1; err != nil && attempt < 3; attempt++ { // ports taken meanwhile: see startSuiteWith
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
		return s
	}

	suite := start()
	aliceTok, bobTok := token(t, secret, "alice"), token(t, secret, "bob")
	bob := dial(t, suite.Gateways()[0].Addr, bobTok, "laptop")
	bob.close() // known, and offline
	alice := dial(t, suite.Gateways()[0].Addr, aliceTok, "phone")
	alice.direct("m-restart", "bob", "still there after a restart?")
	alice.expectTransport(100, "m-restart")
	alice.close()

	suite.Stop()
	nats.Restart()
	store.Restart()
	suite = start()

	gw := suite.Gateways()[0].Addr
	alice = dial(t, gw, aliceTok, "phone")
	bob = dial(t, gw, bobTok, "laptop")
	bob.expectMessage("m-restart")
	bob.ack("m-restart")
	alice.expectTransport(300, "m-restart")
}
