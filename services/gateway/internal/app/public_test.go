package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/bachata-chat/bachata/services/gateway/internal/config"
	"github.com/bachata-chat/bachata/services/gateway/internal/webui"
)

// fetch makes a request to the gateway's WebSocket listener.
func (g *gateway) fetch(method, path, body string) (*http.Response, string) {
	g.t.Helper()
	req, err := http.NewRequestWithContext(g.t.Context(), method, "http://"+g.app.WSAddr().String()+path, strings.NewReader(body))
	require.NoError(g.t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(g.t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(g.t, err)
	require.NoError(g.t, resp.Body.Close())
	return resp, string(b)
}

func TestChatPageBesideTheEndpoint(t *testing.T) {
	t.Parallel()
	g := startGateway(t)

	resp, body := g.fetch(http.MethodGet, "/", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, webui.CSP, resp.Header.Get("Content-Security-Policy"))
	require.Contains(t, body, `<script type="module" src="/ui/app.js">`)

	resp, body = g.fetch(http.MethodGet, "/ui/config.json", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.JSONEq(t, `{"serverName":"localhost","devTokens":false}`, body)

	// Off by default: no development sign-in.
	resp, _ = g.fetch(http.MethodPost, "/dev/token", `{"user":"alice"}`)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	// The endpoint is still there: a plain GET is no upgrade, but it is
	// authenticated first.
	resp, _ = g.fetch(http.MethodGet, "/ws", "")
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	g.dial("alice", "phone")
}

func TestDevTokensSignInToTheEndpoint(t *testing.T) {
	t.Parallel()
	g := startGateway(t, func(c *config.Config) { c.DevTokens = true })

	resp, body := g.fetch(http.MethodGet, "/ui/config.json", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.JSONEq(t, `{"serverName":"localhost","devTokens":true}`, body)

	resp, body = g.fetch(http.MethodPost, "/dev/token", `{"user":"alice"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	var minted struct {
		Token string   `json:"token"`
		User  string   `json:"user"`
		Rooms []string `json:"rooms"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &minted))
	require.Equal(t, "@alice@localhost", minted.User)
	// The test peers have no GroupService: the token comes without the room.
	require.Empty(t, minted.Rooms)

	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	u := url.URL{Scheme: "ws", Host: g.app.WSAddr().String(), Path: "/ws", RawQuery: url.Values{"device": {"web"}, "token": {minted.Token}}.Encode()}
	c, wsResp, err := websocket.Dial(ctx, u.String(), nil)
	if wsResp != nil && wsResp.Body != nil {
		require.NoError(t, wsResp.Body.Close())
	}
	require.NoError(t, err)
	defer func() { _ = c.CloseNow() }()
	require.Equal(t, 1000, transport(t, read(t, c)))
	require.Len(t, g.peers.Connects(), 1)
	require.Equal(t, "@alice@localhost", g.peers.Connects()[0].GetDevice().GetUser())
}
