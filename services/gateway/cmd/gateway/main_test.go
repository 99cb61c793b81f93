package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRunRejectsBadConfigWithEveryProblem(t *testing.T) {
	t.Parallel()
	env := map[string]string{"BACHATA_MAX_FRAME": "10"}
	var stderr bytes.Buffer
	err := run(t.Context(), []string{"gateway", "-gateway-id", "Bad ID"}, func(k string) string { return env[k] }, &stderr)
	require.ErrorContains(t, err, "config: ")
	require.ErrorContains(t, err, "no client authentication: set BACHATA_JWT_SECRET")
	require.ErrorContains(t, err, `gateway-id "Bad ID"`)
	require.ErrorContains(t, err, "max-frame 10")
}

func TestRunHelpPrintsUsage(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	err := run(t.Context(), []string{"gateway", "-h"}, func(string) string { return "" }, &stderr)
	require.NoError(t, err)
	for _, want := range []string{"-ws-addr", "BACHATA_WS_ADDR", "-jwt-secret", "BACHATA_JWT_SECRET", "-jwks-url", "BACHATA_JWKS_URL", "-auth-hook-addr", "BACHATA_AUTH_HOOK_ADDR", "-idle-timeout"} {
		require.Contains(t, stderr.String(), want)
	}
}
