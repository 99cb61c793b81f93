package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	routerv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/router/v1"
	"github.com/bachata-chat/bachata/services/router/chain"
	"github.com/bachata-chat/bachata/services/router/internal/config"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func testConfig(t *testing.T) config.Config {
	t.Helper()
	// Nothing listens at the delivery address: the router must start,
	// serve and stop without it.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deliveryAddr := lis.Addr().String()
	require.NoError(t, lis.Close())
	return config.Config{
		GRPCAddr:        "127.0.0.1:0",
		HTTPAddr:        "127.0.0.1:0",
		DeliveryAddr:    deliveryAddr,
		ServerName:      "localhost",
		EnqueueTimeout:  time.Second,
		ShutdownTimeout: 2 * time.Second,
		// No app route: this test runs without NATS.
		Routes:    []chain.Spec{{Route: "handshake"}, {Route: "direct"}},
		LogLevel:  "info",
		LogFormat: "json",
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { require.NoError(t, resp.Body.Close()) }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// waitReady polls /readyz until it answers 200.
func waitReady(t *testing.T, base string) {
	t.Helper()
	require.Eventually(t, func() bool {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/readyz", nil)
		if err != nil {
			return false
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 5*time.Second, 20*time.Millisecond)
}

// TestAppServesAndStops: the admin endpoints answer, RouterService and gRPC
// health are served, and cancelling the context stops everything cleanly.
func TestAppServesAndStops(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := New(t.Context(), testConfig(t), logger, nil)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	}()

	base := "http://" + a.HTTPAddr().String()
	waitReady(t, base)
	code, body := get(t, base+"/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok\n", body)

	cc, err := grpc.NewClient(a.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer func() { require.NoError(t, cc.Close()) }()

	hc, err := healthpb.NewHealthClient(cc).Check(t.Context(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, hc.GetStatus())

	// A handshake needs no delivery, so it proves the chain is wired.
	resp, err := routerv1.NewRouterServiceClient(cc).Route(t.Context(), &routerv1.RouteRequest{
		Sender: &routerv1.Sender{
			Device:     &commonv1.DeviceRef{User: "@alice@localhost", Device: "phone"},
			SessionKey: "k",
		},
		Message: &commonv1.Message{Id: "hs", Type: "handshake", Data: []byte(`{"title":"Hello world!","session":"k"}`)},
	})
	require.NoError(t, err)
	require.Equal(t, routerv1.Outcome_OUTCOME_REPLIED, resp.GetOutcome())

	code, body = get(t, base+"/metrics")
	require.Equal(t, http.StatusOK, code)
	for _, want := range []string{
		`bachata_router_messages_total{outcome="replied"} 1`,
		`bachata_router_route_decisions_total{decision="reply",route="handshake"} 1`,
		`bachata_router_route_duration_seconds_count{route="direct"} 0`,
		`go_goroutines`,
	} {
		require.True(t, strings.Contains(body, want), "metrics lack %q", want)
	}
}

// TestAppStopsAndClosesListeners: after cancel, Run returns and the listeners
// are closed.
func TestAppStopsAndClosesListeners(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := New(t.Context(), testConfig(t), logger, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	base := "http://" + a.HTTPAddr().String()
	waitReady(t, base)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	for _, addr := range []string{a.HTTPAddr().String(), a.GRPCAddr().String()} {
		conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(t.Context(), "tcp", addr)
		if err == nil {
			_ = conn.Close()
		}
		require.Error(t, err, "%s still accepts connections", addr)
	}
}

// TestNewFailsOnBusyPort: a listener that cannot be opened is reported and
// nothing is left open.
func TestNewFailsOnBusyPort(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { require.NoError(t, busy.Close()) }()
	cfg := testConfig(t)
	cfg.HTTPAddr = busy.Addr().String()
	_, err = New(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	require.ErrorContains(t, err, "listen http")
}
