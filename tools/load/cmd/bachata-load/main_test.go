package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/bachata-chat/bachata/tools/load/internal/loopback"
	"github.com/stretchr/testify/require"
)

func noEnv(string) string { return "" }

func TestRunRefusesWhatItMustNot(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		wantErr string
		isErr   error
	}{
		{name: "no scenario", args: []string{"bachata-load"}, wantErr: "no scenario"},
		{name: "unknown scenario", args: []string{"bachata-load", "flood"}, wantErr: "unknown scenario"},
		{name: "remote gateway", args: []string{"bachata-load", "idle", "-secret", "0123456789abcdef", "-gateway", "ws://203.0.113.7:8080/ws"}, isErr: loopback.ErrNotLoopback},
		{name: "remote metrics", args: []string{"bachata-load", "idle", "-secret", "0123456789abcdef", "-gateway-metrics", "http://192.0.2.1:8081/metrics"}, isErr: loopback.ErrNotLoopback},
		{name: "no secret", args: []string{"bachata-load", "idle"}, wantErr: "-secret"},
		{name: "direct remote gateway", args: []string{"bachata-load", "direct", "-secret", "0123456789abcdef", "-gateways", "ws://127.0.0.1:8080/ws,ws://203.0.113.7:8080/ws"}, isErr: loopback.ErrNotLoopback},
		{name: "group remote admin", args: []string{"bachata-load", "group", "-secret", "0123456789abcdef", "-admin-token", "x", "-admin", "http://198.51.100.1:8081"}, isErr: loopback.ErrNotLoopback},
		{name: "storm remote gateway", args: []string{"bachata-load", "storm", "-secret", "0123456789abcdef", "-gateways", "ws://10.1.2.3:8080/ws"}, isErr: loopback.ErrNotLoopback},
		{name: "direct no secret", args: []string{"bachata-load", "direct"}, wantErr: "-secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			err := run(t.Context(), tt.args, noEnv, strings.NewReader(""), &out, &errOut)
			require.Error(t, err)
			if tt.isErr != nil {
				require.ErrorIs(t, err, tt.isErr)
			}
			require.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"bachata-load", "idle", "-h"}, noEnv, strings.NewReader(""), &out, &errOut))
	require.Contains(t, errOut.String(), "-gateway-pid")
	require.NoError(t, run(t.Context(), []string{"bachata-load", "help"}, noEnv, strings.NewReader(""), &out, &errOut))
	require.Contains(t, out.String(), "idle")
	for _, sc := range []struct{ name, flag string }{{name: "direct", flag: "-pairs"}, {name: "group", flag: "-members"}, {name: "storm", flag: "-hold"}} {
		errOut.Reset()
		require.NoError(t, run(t.Context(), []string{"bachata-load", sc.name, "-h"}, noEnv, strings.NewReader(""), &out, &errOut))
		require.Contains(t, errOut.String(), sc.flag)
	}
}
