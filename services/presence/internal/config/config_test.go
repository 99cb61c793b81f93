package config

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		want     func(t *testing.T, c Config)
		wantErrs []string
		wantHelp bool
	}{
		{
			name: "defaults",
			want: func(t *testing.T, c Config) {
				require.Equal(t, Config{
					GRPCAddr:        ":9083",
					HTTPAddr:        ":8183",
					RedisURL:        "redis://127.0.0.1:6379/0",
					NATSURL:         "nats://127.0.0.1:4222",
					NATSPrefix:      "bachata",
					RedisPrefix:     "bachata",
					Lease:           9 * time.Second,
					SweepInterval:   time.Second,
					SessionTTL:      24 * time.Hour,
					ShutdownTimeout: 10 * time.Second,
					LogLevel:        "info",
					LogFormat:       "json",
				}, c)
			},
		},
		{
			name: "environment",
			env: map[string]string{
				"BACHATA_GRPC_ADDR":      "127.0.0.1:0",
				"REDIS_URL":              "redis+cluster://10.0.0.1:6379,10.0.0.2:6379",
				"NATS_URL":               "nats://a:4222,nats://b:4222",
				"BACHATA_PRESENCE_LEASE": "3s",
				"BACHATA_PRESENCE_SWEEP": "500ms",
				"BACHATA_NATS_PREFIX":    "prod.chat",
				"BACHATA_SESSION_TTL":    "2h",
			},
			want: func(t *testing.T, c Config) {
				require.Equal(t, "127.0.0.1:0", c.GRPCAddr)
				require.Equal(t, "redis+cluster://10.0.0.1:6379,10.0.0.2:6379", c.RedisURL)
				require.Equal(t, "nats://a:4222,nats://b:4222", c.NATSURL)
				require.Equal(t, 3*time.Second, c.Lease)
				require.Equal(t, 500*time.Millisecond, c.SweepInterval)
				require.Equal(t, "prod.chat", c.NATSPrefix)
				require.Equal(t, 2*time.Hour, c.SessionTTL)
			},
		},
		{
			name: "flags win over environment",
			args: []string{"-lease", "20s", "-log-format", "text"},
			env:  map[string]string{"BACHATA_PRESENCE_LEASE": "3s"},
			want: func(t *testing.T, c Config) {
				require.Equal(t, 20*time.Second, c.Lease)
				require.Equal(t, "text", c.LogFormat)
			},
		},
		{
			name: "every problem at once",
			args: []string{"-grpc-addr", "nope", "-http-addr", ":99999", "-lease", "0s", "-log-level", "loud"},
			env: map[string]string{
				"REDIS_URL":                "http://x",
				"NATS_URL":                 "nats://ok:4222,localhost:4222",
				"BACHATA_SHUTDOWN_TIMEOUT": "-1s",
				"BACHATA_REDIS_PREFIX":     "{x}",
				"BACHATA_NATS_PREFIX":      "a..b",
				"BACHATA_LOG_FORMAT":       "xml",
				"BACHATA_SESSION_TTL":      "10ms",
			},
			wantErrs: []string{
				`grpc-addr "nope"`, `http-addr ":99999"`, "lease 0s", `redis-url "http://x"`,
				`nats-url "localhost:4222"`, "shutdown-timeout -1s", "redis-prefix", "nats-prefix",
				`log-level "loud"`, `log-format "xml"`, "session-ttl 10ms",
			},
		},
		{
			name:     "lease longer than any heartbeat may ask",
			args:     []string{"-lease", "1h"},
			wantErrs: []string{"lease 1h0m0s: want > 0 and at most 5m0s"},
		},
		{
			name:     "sweep not shorter than lease",
			args:     []string{"-lease", "2s", "-sweep-interval", "2s"},
			wantErrs: []string{"sweep-interval 2s: want shorter than lease 2s"},
		},
		{
			name:     "unparsable environment and flags with validation problems",
			args:     []string{"-grpc-addr", "nope"},
			env:      map[string]string{"BACHATA_PRESENCE_SWEEP": "often", "BACHATA_PRESENCE_LEASE": "long"},
			wantErrs: []string{"BACHATA_PRESENCE_SWEEP", "BACHATA_PRESENCE_LEASE", "grpc-addr"},
		},
		{
			name:     "unknown flag",
			args:     []string{"-bogus"},
			wantErrs: []string{"bogus"},
		},
		{
			name:     "stray argument",
			args:     []string{"serve"},
			wantErrs: []string{"unexpected arguments"},
		},
		{
			name:     "help",
			args:     []string{"-h"},
			wantHelp: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load(tt.args, func(k string) string { return tt.env[k] })
			switch {
			case tt.wantHelp:
				require.ErrorIs(t, err, ErrHelp)
			case len(tt.wantErrs) > 0:
				require.Error(t, err)
				for _, w := range tt.wantErrs {
					require.ErrorContains(t, err, w)
				}
			default:
				require.NoError(t, err)
				tt.want(t, c)
			}
		})
	}
}

func TestUsageNamesEverySetting(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	Usage(&b, func(string) string { return "" })
	for _, s := range []string{
		"-grpc-addr", "BACHATA_GRPC_ADDR", "-http-addr", "-redis-url", "REDIS_URL", "-nats-url", "NATS_URL",
		"-nats-prefix", "-redis-prefix", "-lease", "BACHATA_PRESENCE_LEASE", "-sweep-interval",
		"BACHATA_PRESENCE_SWEEP", "-session-ttl", "BACHATA_SESSION_TTL", "-shutdown-timeout", "-log-level", "-log-format",
	} {
		require.Contains(t, b.String(), s)
	}
}
