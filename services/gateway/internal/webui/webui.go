// Package webui is the demo chat page the gateway serves on its WebSocket
// listener: GET / is the page, GET /ui/… its scripts and styles, from the
// same origin as GET /ws, which the page connects to.
//
// The files are embedded in the binary, so building the gateway never needs
// Node. The page is plain HTML, CSS and JavaScript modules; static/sdk/
// holds the compiled ES modules of the TypeScript SDK (libs/sdk-ts), copied
// and committed by `make webui`, and `make sdk-test` fails when that copy is
// stale.
//
// Every response carries a strict Content-Security-Policy: scripts,
// styles, images and connections from this origin only (so the page talks
// to this gateway's /ws and /dev/token and nowhere else), no inline script
// or style, no framing.
package webui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// Prefix is where the page's assets are served: /ui/app.js is
// static/app.js, and /ui/config.json tells the page about the gateway
// (Options).
const Prefix = "/ui/"

// CSP is the Content-Security-Policy of every response. 'self' in
// connect-src covers ws:// and wss:// to the same host and port (CSP
// Level 3), which is how the page reaches GET /ws.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// asset is one embedded file, ready to serve.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

// Handler serves the page and its assets.
type Handler struct {
	assets map[string]asset // by path under static/, "index.html" for the page
}

// Options are what the page is told about the gateway, in
// GET /ui/config.json.
type Options struct {
	// ServerName completes bare usernames: "bob" is @bob@<ServerName>.
	ServerName string `json:"serverName"`
	// DevTokens says that POST /dev/token is mounted (package devtoken), so
	// the page offers sign-in with a name; otherwise it asks for a token.
	DevTokens bool `json:"devTokens"`
}

// New loads the embedded files. It fails only if the embedded tree is
// broken, which the package's tests would show.
func New(o Options) (*Handler, error) {
	h := &Handler{assets: make(map[string]asset)}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ctype, ok := contentTypes[path.Ext(p)]
		if !ok {
			return nil // not served: no type to serve it with
		}
		body, err := static.ReadFile(p)
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		h.add(strings.TrimPrefix(p, "static/"), ctype, body)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("webui: %w", err)
	}
	cfg, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("webui: config: %w", err)
	}
	h.add("config.json", contentTypes[".json"], cfg)
	if _, ok := h.assets["index.html"]; !ok {
		return nil, fmt.Errorf("webui: static/index.html is missing")
	}
	return h, nil
}

// add keeps one file to serve, with an ETag of its content.
func (h *Handler) add(name, ctype string, body []byte) {
	sum := sha256.Sum256(body)
	h.assets[name] = asset{body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
}

// contentTypes are the types of the files served; files of other
// extensions are not served.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".json": "application/json",
}

// Register mounts GET / (the page) and GET /ui/ (its assets) on mux. Other
// paths are left to the rest of mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, "index.html") })
	mux.HandleFunc("GET "+Prefix, func(w http.ResponseWriter, r *http.Request) {
		h.serve(w, r, strings.TrimPrefix(r.URL.Path, Prefix))
	})
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request, name string) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", CSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	a, ok := h.assets[name]
	if !ok || name == "index.html" && r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	// No file name carries a hash, so browsers revalidate every time; the
	// ETag makes that a 304.
	hd.Set("Cache-Control", "no-cache")
	hd.Set("Content-Type", a.ctype)
	hd.Set("ETag", a.etag)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
}
