package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDevTokens(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		want    bool
		wantErr string
	}{
		{name: "off by default", env: map[string]string{"BACHATA_JWT_SECRET": secret}},
		{name: "on with the secret", env: map[string]string{"BACHATA_JWT_SECRET": secret, "BACHATA_DEV_TOKENS": "true"}, want: true},
		{name: "flag", args: []string{"-dev-tokens"}, env: map[string]string{"BACHATA_JWT_SECRET": secret}, want: true},
		{name: "explicitly off", env: map[string]string{"BACHATA_JWT_SECRET": secret, "BACHATA_DEV_TOKENS": "false"}},
		{
			name:    "not without the HS256 secret",
			env:     map[string]string{"BACHATA_JWKS_URL": "https://idp.example.com/jwks.json", "BACHATA_DEV_TOKENS": "true"},
			wantErr: "dev-tokens: needs the HS256 secret BACHATA_JWT_SECRET",
		},
		{
			name:    "not a boolean",
			env:     map[string]string{"BACHATA_JWT_SECRET": secret, "BACHATA_DEV_TOKENS": "yes please"},
			wantErr: `BACHATA_DEV_TOKENS="yes please": not a boolean`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _, err := Load(tc.args, env(tc.env))
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, c.DevTokens)
		})
	}
}
