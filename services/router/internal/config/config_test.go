package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	libconfig "github.com/bachata-chat/bachata/libs/config"
	"github.com/bachata-chat/bachata/services/router/chain"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	c, _, err := Load(nil, env(nil))
	require.NoError(t, err)
	require.Equal(t, Config{
		GRPCAddr:        ":9081",
		HTTPAddr:        ":8181",
		DeliveryAddr:    "127.0.0.1:9082",
		ServerName:      "localhost",
		RequireSign:     false,
		EnqueueTimeout:  5 * time.Second,
		ShutdownTimeout: 10 * time.Second,
		NATSURL:         "nats://127.0.0.1:4222",
		NATSPrefix:      "bachata",
		Routes:          chain.DefaultSpecs(),
		LogLevel:        "info",
		LogFormat:       "json",
	}, c)
}

func TestLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, c Config)
		wantErr []string // substrings every one of which the error must hold
	}{
		{
			name: "env overrides defaults",
			env: map[string]string{
				"BACHATA_GRPC_ADDR":        "127.0.0.1:1",
				"BACHATA_HTTP_ADDR":        "127.0.0.1:2",
				"BACHATA_DELIVERY_ADDR":    "dns:///delivery.bachata:9082",
				"BACHATA_SERVER_NAME":      "chat.example.com:8443",
				"BACHATA_REQUIRE_SIGN":     "true",
				"BACHATA_ENQUEUE_TIMEOUT":  "2s",
				"BACHATA_SHUTDOWN_TIMEOUT": "3s",
				"BACHATA_LOG_LEVEL":        "debug",
				"BACHATA_LOG_FORMAT":       "text",
			},
			check: func(t *testing.T, c Config) {
				require.Equal(t, Config{
					GRPCAddr:        "127.0.0.1:1",
					HTTPAddr:        "127.0.0.1:2",
					DeliveryAddr:    "dns:///delivery.bachata:9082",
					ServerName:      "chat.example.com:8443",
					RequireSign:     true,
					EnqueueTimeout:  2 * time.Second,
					ShutdownTimeout: 3 * time.Second,
					NATSURL:         "nats://127.0.0.1:4222",
					NATSPrefix:      "bachata",
					Routes:          chain.DefaultSpecs(),
					LogLevel:        "debug",
					LogFormat:       "text",
				}, c)
			},
		},
		{
			name: "flag wins over env",
			args: []string{"-server-name", "flag.example", "-require-sign"},
			env:  map[string]string{"BACHATA_SERVER_NAME": "env.example"},
			check: func(t *testing.T, c Config) {
				require.Equal(t, "flag.example", c.ServerName)
				require.True(t, c.RequireSign)
			},
		},
		{
			name: "IPv6 server name",
			env:  map[string]string{"BACHATA_SERVER_NAME": "[::1]"},
			check: func(t *testing.T, c Config) {
				require.Equal(t, "[::1]", c.ServerName)
			},
		},
		{
			name:    "unparsable env values are all reported",
			env:     map[string]string{"BACHATA_REQUIRE_SIGN": "yes please", "BACHATA_SHUTDOWN_TIMEOUT": "ten"},
			wantErr: []string{"BACHATA_REQUIRE_SIGN", "BACHATA_SHUTDOWN_TIMEOUT"},
		},
		{
			name:    "unparsable and invalid values are reported together",
			args:    []string{"-log-level", "loud"},
			env:     map[string]string{"BACHATA_ENQUEUE_TIMEOUT": "soon", "BACHATA_SHUTDOWN_TIMEOUT": "0s"},
			wantErr: []string{"BACHATA_ENQUEUE_TIMEOUT", "shutdown-timeout", "log-level"},
		},
		{
			name: "every invalid value is reported",
			args: []string{
				"-grpc-addr", "9081",
				"-http-addr", "nope",
				"-delivery-addr", ":9082",
				"-server-name", "bad name",
				"-enqueue-timeout", "0s",
				"-shutdown-timeout", "-1s",
				"-log-level", "loud",
				"-log-format", "xml",
			},
			wantErr: []string{"grpc-addr", "http-addr", "delivery-addr", "server-name", "enqueue-timeout", "shutdown-timeout", "log-level", "log-format"},
		},
		{
			name:    "unknown flag",
			args:    []string{"-no-such-flag"},
			wantErr: []string{"no-such-flag"},
		},
		{
			name:    "stray argument",
			args:    []string{"extra"},
			wantErr: []string{"unexpected arguments"},
		},
		{
			name:    "server name with an entity sigil",
			args:    []string{"-server-name", "@localhost"},
			wantErr: []string{"server-name"},
		},
		{
			name:    "server name must be canonical (lowercase)",
			args:    []string{"-server-name", "Chat.Example"},
			wantErr: []string{"server-name"},
		},
		{
			name:    "bare IPv6 server name needs brackets",
			args:    []string{"-server-name", "::1"},
			wantErr: []string{"server-name"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _, err := Load(tt.args, env(tt.env))
			if len(tt.wantErr) > 0 {
				require.Error(t, err)
				for _, want := range tt.wantErr {
					require.ErrorContains(t, err, want)
				}
				return
			}
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
}

func TestLoadHelp(t *testing.T) {
	t.Parallel()
	_, set, err := Load([]string{"-h"}, env(nil))
	require.ErrorIs(t, err, libconfig.ErrHelp)
	require.NotNil(t, set)
}

func TestRoutesFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "routes.json")
	require.NoError(t, os.WriteFile(good, []byte(`{"routes":[{"route":"direct"},{"route":"handshake"}]}`), 0o600))
	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"routes":[{"rout":"direct"}]}`), 0o600))
	none := func(string) string { return "" }

	c, _, err := Load(nil, none)
	require.NoError(t, err)
	require.Equal(t, chain.DefaultSpecs(), c.Routes)

	c, _, err = Load([]string{"-routes-file", good}, none)
	require.NoError(t, err)
	require.Equal(t, []chain.Spec{{Route: "direct"}, {Route: "handshake"}}, c.Routes)

	_, _, err = Load([]string{"-routes-file", bad, "-log-level", "loud"}, none)
	require.ErrorContains(t, err, "routes-file")
	require.ErrorContains(t, err, "log-level", "every problem at once")

	_, _, err = Load(nil, func(k string) string {
		if k == "BACHATA_ROUTES_FILE" {
			return filepath.Join(dir, "missing.json")
		}
		return ""
	})
	require.ErrorContains(t, err, "missing.json")
}
