package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
)

// admin calls the admin API of gateway 0 with tok and returns the status
// and the decoded JSON body.
func (e *env) admin(t *testing.T, tok, method, path, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+e.suite.Gateways()[0].HTTPAddr+path, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

// TestPresenceOnTheAdminAPI: GET /v1/presence/{user} tells the devices and
// gateways of a user online, and when a user was last seen.
func TestPresenceOnTheAdminAPI(t *testing.T) {
	t.Parallel()
	e := startSuite(t, 2)
	bob := dial(t, e.gw(1), token(t, secret, "bob"), "laptop")

	code, out := e.admin(t, adminToken, http.MethodGet, "/v1/presence/bob", "")
	require.Equal(t, http.StatusOK, code, "%v", out)
	require.Equal(t, "@bob@localhost", out["user"])
	require.Equal(t, true, out["online"])
	devices, ok := out["devices"].([]any)
	require.True(t, ok)
	require.Len(t, devices, 1)
	d := devices[0].(map[string]any)
	require.Equal(t, "laptop", d["device"])
	require.Equal(t, e.suite.Gateways()[1].GatewayID, d["gateway"])
	require.Positive(t, d["since"])

	bob.close()
	require.Eventually(t, func() bool {
		_, out := e.admin(t, adminToken, http.MethodGet, "/v1/presence/%40bob%40localhost", "")
		return out["online"] == false && out["lastSeen"] != nil
	}, waitFor, 50*time.Millisecond, "bob offline with a last-seen time")

	code, _ = e.admin(t, adminToken, http.MethodGet, "/v1/presence/Not%20A%20User", "")
	require.Equal(t, http.StatusBadRequest, code)
	code, _ = e.admin(t, "wrong-token", http.MethodGet, "/v1/presence/bob", "")
	require.Equal(t, http.StatusUnauthorized, code)
}

// TestKickClosesTheUsersConnectionsAndLosesNothing: DELETE
// /v1/users/{user}/connections closes the user's connections on every
// gateway with 1008 "kicked" (?device= one device only); what was queued
// for them comes on the next connection.
func TestKickClosesTheUsersConnectionsAndLosesNothing(t *testing.T) {
	t.Parallel()
	e := startSuite(t, 2)
	bobTok := token(t, secret, "bob")
	laptop := dial(t, e.gw(0), bobTok, "laptop")
	phone := dial(t, e.gw(1), bobTok, "phone")

	code, out := e.admin(t, adminToken, http.MethodDelete, "/v1/users/bob/connections?device=laptop", "")
	require.Equal(t, http.StatusOK, code, "%v", out)
	require.InDelta(t, 1, out["devices"], 0)
	status, reason := laptop.closedWith()
	require.Equal(t, websocket.StatusPolicyViolation, status)
	require.Equal(t, "kicked", reason)
	phone.send(map[string]int{"type": 1001}) // the phone is still connected
	phone.expectTransport(1002, "")

	alice := dial(t, e.gw(0), token(t, secret, "alice"), "phone")
	code, out = e.admin(t, adminToken, http.MethodDelete, "/v1/users/%40bob%40localhost/connections", "")
	require.Equal(t, http.StatusOK, code, "%v", out)
	status, _ = phone.closedWith()
	require.Equal(t, websocket.StatusPolicyViolation, status)

	alice.direct("m-after-kick", "bob", "still here")
	alice.expectTransport(100, "m-after-kick")
	again := dial(t, e.gw(0), bobTok, "phone")
	again.expectMessage("m-after-kick")
}
