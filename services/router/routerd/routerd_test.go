package routerd

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bachata-chat/bachata/services/router/chain"
)

func TestRunConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantErr    []string
		wantStderr string
	}{
		{
			name:       "help prints usage and succeeds",
			args:       []string{"router", "-h"},
			wantStderr: "BACHATA_DELIVERY_ADDR",
		},
		{
			name:    "every bad setting is reported",
			args:    []string{"router", "-log-format", "xml"},
			env:     map[string]string{"BACHATA_REQUIRE_SIGN": "maybe", "BACHATA_SHUTDOWN_TIMEOUT": "0s"},
			wantErr: []string{"invalid configuration", "BACHATA_REQUIRE_SIGN", "shutdown-timeout", "log-format"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			err := Run(t.Context(), tt.args, func(k string) string { return tt.env[k] }, &stderr, chain.NewRegistry())
			for _, want := range tt.wantErr {
				require.ErrorContains(t, err, want)
			}
			if len(tt.wantErr) == 0 {
				require.NoError(t, err)
			}
			require.Contains(t, stderr.String(), tt.wantStderr)
		})
	}
}

func TestRoutesFileNamingAnUnregisteredRouteIsRefused(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "routes.json")
	require.NoError(t, os.WriteFile(file, []byte(`{"routes":[{"route":"profanity"},{"route":"direct"}]}`), 0o600))
	var stderr bytes.Buffer
	err := Run(t.Context(), []string{"router", "-routes-file", file, "-grpc-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0"},
		func(string) string { return "" }, &stderr, chain.NewRegistry())
	require.ErrorIs(t, err, chain.ErrUnknownRoute)
	require.ErrorContains(t, err, `"profanity"`)
}
