package main

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bachata-chat/bachata/libs/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Not parallel: run sets go-redis's process-wide logger, and two runs at
// once would race on it.
func TestRunServesUntilCanceled(t *testing.T) {
	r := testkit.StartRedis(t, testkit.RedisOptions{})
	n := testkit.StartNATS(t)
	httpPort, err := testkit.FreePort()
	require.NoError(t, err)
	env := map[string]string{
		"REDIS_URL":          r.URL(),
		"NATS_URL":           n.URL(),
		"BACHATA_GRPC_ADDR":  "127.0.0.1:0",
		"BACHATA_HTTP_ADDR":  "127.0.0.1:" + strconv.Itoa(httpPort),
		"BACHATA_LOG_FORMAT": "text",
	}
	ctx, cancel := context.WithCancel(t.Context())
	var stderr lockedBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"presence"}, func(k string) string { return env[k] }, &stderr) }()

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	require.Eventually(t, func() bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(httpPort)+"/readyz", nil)
		if err != nil {
			return false
		}
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 15*time.Second, 20*time.Millisecond)
	cancel() // what SIGTERM does through signal.NotifyContext
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	require.Contains(t, stderr.String(), "presence ready")
	require.Contains(t, stderr.String(), "presence stopped")
}

// lockedBuffer is a bytes.Buffer the service's logger and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestRunRejectsBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantErrs []string
	}{
		{
			name:     "flags and environment together",
			args:     []string{"presence", "-lease", "1s", "-sweep-interval", "5s", "-grpc-addr", "9083"},
			env:      map[string]string{"REDIS_URL": "localhost:6379", "BACHATA_PRESENCE_SWEEP": "soon"},
			wantErrs: []string{"BACHATA_PRESENCE_SWEEP", "sweep-interval 5s", `grpc-addr "9083"`, `redis-url "localhost:6379"`},
		},
		{
			name:     "unknown flag",
			args:     []string{"presence", "-nope"},
			wantErrs: []string{"-nope"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			err := run(t.Context(), tt.args, func(k string) string { return tt.env[k] }, &stderr)
			require.Error(t, err)
			for _, w := range tt.wantErrs {
				require.ErrorContains(t, err, w)
			}
		})
	}
}

func TestRunHelp(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"presence", "-h"}, func(string) string { return "" }, &stderr))
	require.Contains(t, stderr.String(), "BACHATA_PRESENCE_LEASE")
}

// Not parallel, like TestRunServesUntilCanceled.
func TestRunFailsWithoutRedis(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	err := run(ctx, []string{"presence", "-redis-url", "redis://127.0.0.1:1/0", "-grpc-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0"},
		func(string) string { return "" }, &stderr)
	require.ErrorContains(t, err, "redis")
}
