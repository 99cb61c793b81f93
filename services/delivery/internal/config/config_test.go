package config

import (
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
		wantErrs []string
		check    func(t *testing.T, c Config)
	}{
		{
			name: "defaults",
			check: func(t *testing.T, c Config) {
				require.Equal(t, ":9082", c.GRPCAddr)
				require.Equal(t, 64, c.Window)
				require.Equal(t, 24*time.Hour, c.DedupeTTL)
			},
		},
		{
			name: "env and flags",
			args: []string{"-window", "8"},
			env:  map[string]string{"REDIS_URL": "redis://10.0.0.1:6379/1", "BACHATA_DELIVERY_WINDOW": "4"},
			check: func(t *testing.T, c Config) {
				require.Equal(t, 8, c.Window)
				require.Equal(t, "redis://10.0.0.1:6379/1", c.RedisURL)
			},
		},
		{
			name:     "every problem at once",
			args:     []string{"-grpc-addr", "nope", "-window", "0"},
			env:      map[string]string{"REDIS_URL": "http://x", "BACHATA_DEDUPE_TTL": "1s"},
			wantErrs: []string{"grpc-addr", "window", "redis-url", "dedupe-ttl"},
		},
		{
			name:     "unparsable env",
			env:      map[string]string{"BACHATA_DELIVERY_WINDOW": "many"},
			wantErrs: []string{"BACHATA_DELIVERY_WINDOW"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _, err := Load(tt.args, func(k string) string { return tt.env[k] })
			if len(tt.wantErrs) > 0 {
				require.Error(t, err)
				for _, w := range tt.wantErrs {
					require.ErrorContains(t, err, w)
				}
				return
			}
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
}
