package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	libconfig "github.com/bachata-chat/bachata/libs/config"
	"github.com/stretchr/testify/require"
)

const secret = "0123456789abcdef0123"

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	c, _, err := Load(nil, env(map[string]string{"BACHATA_JWT_SECRET": secret}))
	require.NoError(t, err)
	require.Equal(t, ":8080", c.WSAddr)
	require.Equal(t, ":8081", c.AdminAddr)
	require.Equal(t, "localhost", c.ServerName)
	require.Equal(t, "127.0.0.1:9081", c.RouterAddr)
	require.Equal(t, "127.0.0.1:9082", c.DeliveryAddr)
	require.Equal(t, "127.0.0.1:9083", c.PresenceAddr)
	require.Equal(t, "nats://127.0.0.1:4222", c.NATSURL)
	require.Equal(t, "bachata", c.NATSPrefix)
	require.Equal(t, 25*time.Second, c.PingInterval)
	require.Equal(t, 60*time.Second, c.IdleTimeout)
	require.Equal(t, 65536, c.MaxFrame)
	require.Equal(t, 3*time.Second, c.Heartbeat)
	require.Equal(t, 9*time.Second, c.Lease())
	require.Equal(t, 10*time.Second, c.WriteTimeout)
	require.Equal(t, 10*time.Second, c.RPCTimeout)
	require.Equal(t, 1<<20, c.QueueBytes)
	require.Equal(t, ReaderEpoll, c.WSReader)
	require.Equal(t, 15*time.Second, c.ShutdownTimeout)
	require.Empty(t, c.JWKSURL)
	require.Equal(t, 10*time.Minute, c.JWKSRefresh)
	require.Empty(t, c.AuthHookAddr)
	require.Equal(t, 2*time.Second, c.AuthHookTimeout)
	require.Equal(t, 16, c.MaxUserConns)
	require.Equal(t, time.Second, c.PresenceCoalesce)
	require.Equal(t, 1000, c.PresenceMaxWatch)
	require.Empty(t, c.AllowedOrigins)
	require.Equal(t, "info", c.LogLevel)
	require.Equal(t, "json", c.LogFormat)
	require.Regexp(t, `^[a-z0-9_-]+-[0-9a-f]{6}$`, c.GatewayID)
	require.LessOrEqual(t, len(c.GatewayID), MaxGatewayID)
}

func TestLoadDefaultGatewayIDsDiffer(t *testing.T) {
	t.Parallel()
	a, _, err := Load(nil, env(map[string]string{"BACHATA_JWT_SECRET": secret}))
	require.NoError(t, err)
	b, _, err := Load(nil, env(map[string]string{"BACHATA_JWT_SECRET": secret}))
	require.NoError(t, err)
	require.NotEqual(t, a.GatewayID, b.GatewayID)
}

func TestLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, c Config)
		wantErr []string // every substring must be in the error
	}{
		{
			name: "env sets values",
			env: map[string]string{
				"BACHATA_JWT_SECRET": secret, "BACHATA_WS_ADDR": "127.0.0.1:9999", "BACHATA_GATEWAY_ID": "gw-1",
				"BACHATA_PING_INTERVAL": "1s", "BACHATA_IDLE_TIMEOUT": "2s", "BACHATA_MAX_FRAME": "2048",
				"NATS_URL": "nats://n:4222", "BACHATA_SERVER_NAME": "example.org",
			},
			check: func(t *testing.T, c Config) {
				require.Equal(t, "127.0.0.1:9999", c.WSAddr)
				require.Equal(t, "gw-1", c.GatewayID)
				require.Equal(t, time.Second, c.PingInterval)
				require.Equal(t, 2*time.Second, c.IdleTimeout)
				require.Equal(t, 2048, c.MaxFrame)
				require.Equal(t, "nats://n:4222", c.NATSURL)
				require.Equal(t, "example.org", c.ServerName)
			},
		},
		{
			name: "flag wins over env",
			args: []string{"-gateway-id", "from_flag", "-heartbeat", "500ms"},
			env:  map[string]string{"BACHATA_JWT_SECRET": secret, "BACHATA_GATEWAY_ID": "from-env"},
			check: func(t *testing.T, c Config) {
				require.Equal(t, "from_flag", c.GatewayID)
				require.Equal(t, 1500*time.Millisecond, c.Lease())
			},
		},
		{
			name:    "no authentication at all",
			env:     map[string]string{},
			wantErr: []string{"no client authentication: set BACHATA_JWT_SECRET (at least 16 bytes), BACHATA_JWKS_URL or BACHATA_AUTH_HOOK_ADDR"},
		},
		{
			name: "JWKS alone",
			env:  map[string]string{"BACHATA_JWKS_URL": "https://idp.example.com/.well-known/jwks.json", "BACHATA_JWKS_REFRESH": "1h"},
			check: func(t *testing.T, c Config) {
				require.Empty(t, c.JWTSecret)
				require.Equal(t, "https://idp.example.com/.well-known/jwks.json", c.JWKSURL)
				require.Equal(t, time.Hour, c.JWKSRefresh)
			},
		},
		{
			name: "auth hook alone",
			args: []string{"-auth-hook-addr", "dns:///sessions.example:9090", "-auth-hook-timeout", "500ms"},
			env:  map[string]string{},
			check: func(t *testing.T, c Config) {
				require.Equal(t, "dns:///sessions.example:9090", c.AuthHookAddr)
				require.Equal(t, 500*time.Millisecond, c.AuthHookTimeout)
			},
		},
		{
			name: "secret, JWKS and hook together",
			env: map[string]string{
				"BACHATA_JWT_SECRET": secret, "BACHATA_JWKS_URL": "http://keycloak:8080/realms/chat/protocol/openid-connect/certs",
				"BACHATA_AUTH_HOOK_ADDR": "10.0.0.1:9090,10.0.0.2:9090",
			},
			check: func(t *testing.T, c Config) {
				require.Equal(t, secret, c.JWTSecret)
				require.Equal(t, "http://keycloak:8080/realms/chat/protocol/openid-connect/certs", c.JWKSURL)
				require.Equal(t, "10.0.0.1:9090,10.0.0.2:9090", c.AuthHookAddr)
			},
		},
		{
			name: "bad JWKS and hook settings",
			env: map[string]string{
				"BACHATA_JWKS_URL": "ftp://idp.example.com/jwks.json", "BACHATA_JWKS_REFRESH": "5s",
				"BACHATA_AUTH_HOOK_ADDR": "sessions", "BACHATA_AUTH_HOOK_TIMEOUT": "0s",
			},
			wantErr: []string{
				`jwks-url "ftp://idp.example.com/jwks.json": want an https:// or http:// URL with a host`,
				"jwks-refresh 5s: want at least 30s",
				`auth-hook-addr "sessions": want host:port`,
				"auth-hook-timeout 0s: want > 0",
			},
		},
		{
			name:    "JWKS URL without host",
			env:     map[string]string{"BACHATA_JWKS_URL": "https:///jwks.json"},
			wantErr: []string{`jwks-url "https:///jwks.json"`},
		},
		{
			name:    "short secret beside a JWKS URL",
			env:     map[string]string{"BACHATA_JWT_SECRET": "short", "BACHATA_JWKS_URL": "https://idp.example.com/jwks.json"},
			wantErr: []string{"jwt-secret is 5 bytes: want at least 16"},
		},
		{
			name:    "short secret",
			env:     map[string]string{"BACHATA_JWT_SECRET": "short"},
			wantErr: []string{"jwt-secret is 5 bytes: want at least 16"},
		},
		{
			name:    "gateway id not subject-safe",
			env:     map[string]string{"BACHATA_JWT_SECRET": secret, "BACHATA_GATEWAY_ID": "gw.1"},
			wantErr: []string{`gateway-id "gw.1"`},
		},
		{
			name:    "gateway id upper case",
			args:    []string{"-gateway-id", "GW1"},
			env:     map[string]string{"BACHATA_JWT_SECRET": secret},
			wantErr: []string{`gateway-id "GW1"`},
		},
		{
			name:    "idle timeout not above ping interval",
			env:     map[string]string{"BACHATA_JWT_SECRET": secret, "BACHATA_PING_INTERVAL": "30s", "BACHATA_IDLE_TIMEOUT": "30s"},
			wantErr: []string{"idle-timeout 30s: want more than ping-interval 30s"},
		},
		{
			name:    "unparsable env",
			env:     map[string]string{"BACHATA_JWT_SECRET": secret, "BACHATA_MAX_FRAME": "big"},
			wantErr: []string{`BACHATA_MAX_FRAME="big": not an integer`},
		},
		{
			name:    "unknown flag",
			args:    []string{"-nope"},
			env:     map[string]string{"BACHATA_JWT_SECRET": secret},
			wantErr: []string{"-nope"},
		},
		{
			name: "connection limits and origins",
			env: map[string]string{
				"BACHATA_JWT_SECRET": secret, "BACHATA_MAX_USER_CONNECTIONS": "3",
				"BACHATA_ALLOWED_ORIGINS": "https://chat.example.com, https://*.example.org",
			},
			check: func(t *testing.T, c Config) {
				require.Equal(t, 3, c.MaxUserConns)
				require.Equal(t, "https://chat.example.com, https://*.example.org", c.AllowedOrigins)
			},
		},
		{
			name:    "bad connection limit and origins",
			args:    []string{"-max-user-conns", "-1", "-allowed-origins", "chat.example.com,https://ok.com/path"},
			env:     map[string]string{"BACHATA_JWT_SECRET": secret},
			wantErr: []string{"max-user-conns -1", `allowed-origins: invalid origin pattern "chat.example.com"`, `"https://ok.com/path"`},
		},
		{
			name:  "goroutine reader",
			env:   map[string]string{"BACHATA_JWT_SECRET": secret, "BACHATA_WS_READER": "goroutine"},
			check: func(t *testing.T, c Config) { require.Equal(t, ReaderGoroutine, c.WSReader) },
		},
		{
			name:    "unknown reader",
			args:    []string{"-ws-reader", "io_uring"},
			env:     map[string]string{"BACHATA_JWT_SECRET": secret},
			wantErr: []string{`ws-reader "io_uring": want epoll or goroutine`},
		},
		{
			name:    "bad presence settings",
			args:    []string{"-presence-coalesce", "0s", "-presence-max-watch", "0"},
			env:     map[string]string{"BACHATA_JWT_SECRET": secret},
			wantErr: []string{"presence-coalesce 0s: want > 0", "presence-max-watch 0: want at least 1"},
		},
		{
			name: "several problems at once",
			args: []string{"-ws-addr", "nowhere", "-log-level", "loud"},
			env: map[string]string{
				"BACHATA_GATEWAY_ID": "bad id", "BACHATA_MAX_FRAME": "10", "NATS_URL": "http://x",
				"BACHATA_HEARTBEAT": "0s", "BACHATA_LOG_FORMAT": "xml",
			},
			wantErr: []string{
				`ws-addr "nowhere": want host:port`,
				`gateway-id "bad id"`,
				"no client authentication",
				`nats-url "http://x"`,
				"max-frame 10",
				"heartbeat 0s: want > 0",
				`log-level "loud"`,
				`log-format "xml"`,
			},
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

func TestLoadHelpNeverShowsTheSecret(t *testing.T) {
	t.Parallel()
	_, set, err := Load([]string{"-h"}, env(map[string]string{"BACHATA_JWT_SECRET": secret}))
	require.True(t, errors.Is(err, libconfig.ErrHelp))
	var usage strings.Builder
	set.Usage(&usage)
	require.Contains(t, usage.String(), "BACHATA_JWT_SECRET")
	require.NotContains(t, usage.String(), secret)
}

func TestLoadSecretFlagWinsOverEnv(t *testing.T) {
	t.Parallel()
	c, _, err := Load([]string{"-jwt-secret", "flag-secret-0123456789"}, env(map[string]string{"BACHATA_JWT_SECRET": secret}))
	require.NoError(t, err)
	require.Equal(t, "flag-secret-0123456789", c.JWTSecret)
	c, _, err = Load(nil, env(map[string]string{"BACHATA_JWT_SECRET": secret}))
	require.NoError(t, err)
	require.Equal(t, secret, c.JWTSecret)
}
