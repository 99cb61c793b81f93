package webui

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	h, err := New(Options{ServerName: "example.org", DevTokens: true})
	require.NoError(t, err)
	mux := http.NewServeMux()
	h.Register(mux)
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, path string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+path, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return resp, string(b)
}

func TestServesPageAndAssets(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	for _, tc := range []struct {
		path  string
		ctype string
		has   string
	}{
		{path: "/", ctype: "text/html; charset=utf-8", has: `<script type="module" src="/ui/app.js">`},
		{path: "/ui/app.js", ctype: "text/javascript; charset=utf-8", has: `from "./sdk/index.js"`},
		{path: "/ui/style.css", ctype: "text/css; charset=utf-8", has: ".bubble"},
		{path: "/ui/icon.svg", ctype: "image/svg+xml", has: "<svg"},
		{path: "/ui/sdk/index.js", ctype: "text/javascript; charset=utf-8", has: "BachataClient"},
		{path: "/ui/sdk/client.js", ctype: "text/javascript; charset=utf-8", has: "class BachataClient"},
		{path: "/ui/config.json", ctype: "application/json", has: `{"serverName":"example.org","devTokens":true}`},
	} {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			resp, body := get(t, srv, tc.path, nil)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, tc.ctype, resp.Header.Get("Content-Type"))
			require.Contains(t, body, tc.has)
			require.Equal(t, CSP, resp.Header.Get("Content-Security-Policy"))
			require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
			require.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))
			require.Equal(t, "no-referrer", resp.Header.Get("Referrer-Policy"))
			require.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
			etag := resp.Header.Get("ETag")
			require.NotEmpty(t, etag)

			again, body := get(t, srv, tc.path, map[string]string{"If-None-Match": etag})
			require.Equal(t, http.StatusNotModified, again.StatusCode)
			require.Empty(t, body)
		})
	}
}

func TestLeavesOtherPathsAlone(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	for _, p := range []string{"/ui/", "/ui/nope.js", "/ui/index.html", "/index.html", "/ui/sdk/client.js.map", "/ui/../go.mod"} {
		resp, _ := get(t, srv, p, nil)
		require.Equal(t, http.StatusNotFound, resp.StatusCode, p)
	}
	resp, _ := get(t, srv, "/ws", nil)
	require.Equal(t, http.StatusTeapot, resp.StatusCode, "/ws stays with the endpoint")
}

// TestPageNeedsNothingInline keeps the page within its CSP: no inline
// script, style attribute or event handler, and every script and
// stylesheet from this origin.
func TestPageNeedsNothingInline(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	_, html := get(t, srv, "/", nil)
	require.NotRegexp(t, `<script(?:\s[^>]*)?>\s*[^<\s]`, html, "inline script")
	require.NotContains(t, html, "<style")
	require.NotRegexp(t, `\sstyle=`, html)
	require.NotRegexp(t, `\son[a-z]+=`, html)
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(html, -1) {
		require.True(t, strings.HasPrefix(m[1], "/ui/"), "asset %s outside /ui/", m[1])
		resp, _ := get(t, srv, m[1], nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, m[1])
	}
	// Every module the page imports is embedded.
	for _, name := range []string{"app.js", "sdk/index.js", "sdk/client.js"} {
		_, js := get(t, srv, "/ui/"+name, nil)
		for _, m := range regexp.MustCompile(`from "\./([^"]+)"`).FindAllStringSubmatch(js, -1) {
			dir := name[:strings.LastIndex(name, "/")+1]
			resp, _ := get(t, srv, "/ui/"+dir+m[1], nil)
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s imports %s", name, m[1])
		}
	}
}
