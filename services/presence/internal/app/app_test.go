package app

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bachata-chat/bachata/libs/grpcx"
	"github.com/bachata-chat/bachata/libs/natsx"
	"github.com/bachata-chat/bachata/libs/testkit"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	eventsv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/events/v1"
	presencev1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/presence/v1"
	"github.com/bachata-chat/bachata/services/presence/internal/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitFor = 15 * time.Second

// service is a presence App running against real servers, with a gRPC
// client and an HTTP client for its admin endpoints.
type service struct {
	app    *App
	cfg    config.Config
	redis  *testkit.Redis
	nats   *testkit.NATS
	client presencev1.PresenceServiceClient
	health healthpb.HealthClient
	http   *http.Client
	stop   func() error
}

func startService(t *testing.T) *service {
	t.Helper()
	r := testkit.StartRedis(t, testkit.RedisOptions{})
	n := testkit.StartNATS(t)
	cfg, err := config.Load([]string{
		"-grpc-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0",
		"-redis-url", r.URL(), "-nats-url", n.URL(),
		"-nats-prefix", "apptest", "-redis-prefix", "apptest",
		"-lease", "2s", "-sweep-interval", "50ms", "-shutdown-timeout", "5s",
	}, func(string) string { return "" })
	require.NoError(t, err)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := New(t.Context(), cfg, logger)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	// Without client retries, each call shows the code the service chose.
	cc, err := grpcx.Dial(a.GRPCAddr().String(), grpc.WithDisableRetry())
	require.NoError(t, err)
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	s := &service{
		app: a, cfg: cfg, redis: r, nats: n, http: hc,
		client: presencev1.NewPresenceServiceClient(cc),
		health: healthpb.NewHealthClient(cc),
	}
	stopped := false
	s.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		err := <-done
		_ = cc.Close()
		return err
	}
	t.Cleanup(func() { require.NoError(t, s.stop()) })
	return s
}

// fetch gets an admin path and returns the status and body.
func (s *service) fetch(ctx context.Context, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.app.HTTPAddr().String()+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// get is fetch for the test goroutine, failing the test on errors.
func (s *service) get(t *testing.T, path string) (int, string) {
	t.Helper()
	code, body, err := s.fetch(t.Context(), path)
	require.NoError(t, err)
	return code, body
}

func TestServiceOverGRPCAndHTTP(t *testing.T) {
	t.Parallel()
	s := startService(t)
	ctx := t.Context()
	alice := "@alice@localhost"
	phone := &commonv1.DeviceRef{User: alice, Device: "phone"}

	require.Eventually(t, func() bool {
		code, _, err := s.fetch(ctx, "/readyz")
		return err == nil && code == http.StatusOK
	}, waitFor, 10*time.Millisecond)
	code, body := s.get(t, "/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok\n", body)
	hr, err := s.health.Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, hr.GetStatus())

	// Gateways learn a user's changes on the subject of its token.
	nc := s.nats.Conn()
	changes := make(chan *nats.Msg, 16)
	sub, err := nc.ChanSubscribe(natsx.Subjects{Prefix: "apptest"}.PresenceChanged(natsx.UserToken(alice)), changes)
	require.NoError(t, err)
	defer func() { _ = sub.Unsubscribe() }()
	require.NoError(t, nc.Flush())

	t.Run("errors map to codes", func(t *testing.T) {
		tests := []struct {
			name string
			call func() error
			want codes.Code
		}{
			{name: "connect without device", want: codes.InvalidArgument, call: func() error {
				_, err := s.client.Connect(ctx, &presencev1.ConnectRequest{GatewayId: "gw-1", ConnectionId: "c"})
				return err
			}},
			{name: "connect without gateway lease", want: codes.FailedPrecondition, call: func() error {
				_, err := s.client.Connect(ctx, &presencev1.ConnectRequest{Device: phone, GatewayId: "gw-unknown", ConnectionId: "c"})
				return err
			}},
			{name: "disconnect without connection id", want: codes.InvalidArgument, call: func() error {
				_, err := s.client.Disconnect(ctx, &presencev1.DisconnectRequest{Device: phone, GatewayId: "gw-1"})
				return err
			}},
			{name: "heartbeat without gateway", want: codes.InvalidArgument, call: func() error {
				_, err := s.client.Heartbeat(ctx, &presencev1.HeartbeatRequest{})
				return err
			}},
			{name: "heartbeat with an absurd lease", want: codes.InvalidArgument, call: func() error {
				_, err := s.client.Heartbeat(ctx, &presencev1.HeartbeatRequest{GatewayId: "gw-1", LeaseMs: 1 << 62})
				return err
			}},
			{name: "heartbeat with a negative lease", want: codes.InvalidArgument, call: func() error {
				_, err := s.client.Heartbeat(ctx, &presencev1.HeartbeatRequest{GatewayId: "gw-1", LeaseMs: -(1 << 62)})
				return err
			}},
			{name: "query of an empty user", want: codes.InvalidArgument, call: func() error {
				_, err := s.client.Query(ctx, &presencev1.QueryRequest{Users: []string{""}})
				return err
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				require.Equal(t, tt.want, status.Code(tt.call()))
			})
		}
	})

	t.Run("connect, query, disconnect", func(t *testing.T) {
		hb, err := s.client.Heartbeat(ctx, &presencev1.HeartbeatRequest{GatewayId: "gw-1", LeaseMs: 60_000})
		require.NoError(t, err)
		require.False(t, hb.GetKnown())
		_, err = s.client.Connect(ctx, &presencev1.ConnectRequest{Device: phone, GatewayId: "gw-1", ConnectionId: "c1"})
		require.NoError(t, err)
		require.True(t, nextChange(t, changes).GetOnline())

		q, err := s.client.Query(ctx, &presencev1.QueryRequest{Users: []string{alice, "@nobody@localhost"}})
		require.NoError(t, err)
		require.Len(t, q.GetUsers(), 2)
		require.Equal(t, presencev1.Status_STATUS_ONLINE, q.GetUsers()[0].GetStatus())
		require.Len(t, q.GetUsers()[0].GetDevices(), 1)
		require.Equal(t, "gw-1", q.GetUsers()[0].GetDevices()[0].GetGatewayId())
		require.Equal(t, presencev1.Status_STATUS_OFFLINE, q.GetUsers()[1].GetStatus())
		require.Zero(t, q.GetUsers()[1].GetLastSeenMs())

		_, err = s.client.Disconnect(ctx, &presencev1.DisconnectRequest{Device: phone, GatewayId: "gw-1", ConnectionId: "c1"})
		require.NoError(t, err)
		off := nextChange(t, changes)
		require.False(t, off.GetOnline())
		require.Positive(t, off.GetLastSeenMs())
	})

	t.Run("crashed gateway goes offline", func(t *testing.T) {
		_, err := s.client.Heartbeat(ctx, &presencev1.HeartbeatRequest{GatewayId: "gw-2", LeaseMs: 200})
		require.NoError(t, err)
		_, err = s.client.Connect(ctx, &presencev1.ConnectRequest{Device: phone, GatewayId: "gw-2", ConnectionId: "c2"})
		require.NoError(t, err)
		require.True(t, nextChange(t, changes).GetOnline())
		// No more heartbeats: the service's own sweeper finds the lease expired.
		require.False(t, nextChange(t, changes).GetOnline())
		hb, err := s.client.Heartbeat(ctx, &presencev1.HeartbeatRequest{GatewayId: "gw-2"})
		require.NoError(t, err)
		require.False(t, hb.GetKnown(), "its lease was swept")
	})

	t.Run("metrics", func(t *testing.T) {
		// The sweep counts the expired gateway after publishing its events,
		// so the counters may trail the events the test saw by a moment.
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			code, body, err := s.fetch(ctx, "/metrics")
			assert.NoError(c, err)
			assert.Equal(c, http.StatusOK, code)
			for _, m := range []string{
				`bachata_presence_events_published_total{kind="online"} 2`,
				`bachata_presence_events_published_total{kind="offline"} 2`,
				`bachata_presence_events_published_total{kind="gateway_down"} 1`,
				`bachata_presence_expired_gateways_total 1`,
				"bachata_presence_sweeps_total",
				"bachata_presence_connected_devices",
				`bachata_presence_redis_errors_total{op="query"} 0`,
				"go_goroutines",
			} {
				assert.Contains(c, body, m)
			}
		}, waitFor, 20*time.Millisecond)
	})

	t.Run("redis down is unavailable", func(t *testing.T) {
		s.redis.Kill()
		_, err := s.client.Query(ctx, &presencev1.QueryRequest{Users: []string{alice}})
		require.Equal(t, codes.Unavailable, status.Code(err))
		_, body := s.get(t, "/metrics")
		require.Regexp(t, `bachata_presence_redis_errors_total\{op="query"\} [1-9]`, body)
		s.redis.Restart()
		require.Eventually(t, func() bool {
			_, err := s.client.Query(ctx, &presencev1.QueryRequest{Users: []string{alice}})
			return err == nil
		}, waitFor, 20*time.Millisecond)
	})

	require.NoError(t, s.stop())
	_, err = s.client.Query(ctx, &presencev1.QueryRequest{Users: []string{alice}})
	require.Error(t, err, "stopped")
}

func nextChange(t *testing.T, ch <-chan *nats.Msg) *eventsv1.PresenceChanged {
	t.Helper()
	select {
	case m := <-ch:
		var ev eventsv1.PresenceChanged
		require.NoError(t, proto.Unmarshal(m.Data, &ev))
		return &ev
	case <-time.After(waitFor):
		t.Fatalf("no presence change within %s", waitFor)
		return nil
	}
}

func TestNewFailsCleanly(t *testing.T) {
	t.Parallel()
	n := testkit.StartNATS(t)
	r := testkit.StartRedis(t, testkit.RedisOptions{})
	port, err := testkit.FreePort()
	require.NoError(t, err)
	tests := []struct {
		name    string
		mutate  func(c *config.Config)
		wantErr string
	}{
		{name: "redis unreachable", wantErr: "redis", mutate: func(c *config.Config) {
			c.RedisURL = "redis://127.0.0.1:" + itoa(port) + "/0"
		}},
		{name: "nats unreachable", wantErr: "nats", mutate: func(c *config.Config) {
			c.NATSURL = "nats://127.0.0.1:" + itoa(port)
		}},
		{name: "grpc address taken", wantErr: "listen grpc", mutate: func(c *config.Config) {
			c.GRPCAddr = r.Addr()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Load([]string{
				"-grpc-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0",
				"-redis-url", r.URL(), "-nats-url", n.URL(),
			}, func(string) string { return "" })
			require.NoError(t, err)
			tt.mutate(&cfg)
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			_, err = New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
