package ws

import (
	"errors"
	"net/http"

	"github.com/bachata-chat/bachata/libs/entity"
	"github.com/bachata-chat/bachata/services/gateway/internal/auth"
	"github.com/bachata-chat/bachata/services/gateway/internal/session"
	"github.com/bachata-chat/bachata/services/gateway/internal/wsio"
)

// DefaultDevice is the device of a client that names none.
const DefaultDevice = "default"

// MaxDevice is the longest device ID accepted, in bytes.
const MaxDevice = 64

// MaxSessionKey is the longest session key passed on to presence, in
// bytes; the keys presence issues are 43.
const MaxSessionKey = 64

// serveWS is GET /ws?device=<id>&session=<key>. Everything that can be
// refused is refused before the upgrade, with a plain HTTP status a browser
// or a load balancer understands: 503 while draining, 403 for an origin
// not allowed, 401 for a missing or bad token (503 when it cannot be
// checked now), 400 for a bad device, 429 when the user has too many
// devices connected here.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if s.isDraining() {
		http.Error(w, "gateway is shutting down", http.StatusServiceUnavailable)
		return
	}
	if !s.opts.Origins.Allow(r.Header.Get("Origin")) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	id, err := s.auth.Authenticate(r.Context(), r)
	if errors.Is(err, auth.ErrUnavailable) {
		// The token could not be checked (auth hook or JWKS down): 503,
		// so the client keeps its token and tries again later.
		s.log.WarnContext(r.Context(), "websocket authentication unavailable", "remote", r.RemoteAddr, "err", err)
		http.Error(w, auth.Reason(err), http.StatusServiceUnavailable)
		return
	}
	if err != nil {
		s.log.DebugContext(r.Context(), "websocket refused", "reason", auth.Reason(err), "remote", r.RemoteAddr, "err", err)
		w.Header().Set("WWW-Authenticate", `Bearer realm="bachata"`)
		http.Error(w, auth.Reason(err), http.StatusUnauthorized)
		return
	}
	device := r.URL.Query().Get("device")
	if device == "" {
		device = DefaultDevice
	}
	if len(device) > MaxDevice || !entity.ValidLocal(device) {
		http.Error(w, "invalid device: want 1 to 64 characters of a-z 0-9 . _ = - /", http.StatusBadRequest)
		return
	}
	key := session.Key{User: id.User, Device: device}
	if !s.reg.Admits(key, s.opts.MaxUserConns) {
		http.Error(w, "too many connections for this user", http.StatusTooManyRequests)
		return
	}
	// The session key the client held before, from any gateway; presence
	// decides whether it resumes. Anything too long is not a key.
	resume := r.URL.Query().Get("session")
	if len(resume) > MaxSessionKey {
		resume = ""
	}
	if !s.track() {
		http.Error(w, "gateway is shutting down", http.StatusServiceUnavailable)
		return
	}
	conn, err := wsio.Upgrade(w, r, &s.opts.IO)
	if err != nil {
		s.conns.Done()
		s.log.DebugContext(r.Context(), "websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	c, err := newClient(s, conn, key, resume)
	if err != nil {
		// Only the random source can fail here.
		s.log.ErrorContext(r.Context(), "websocket session not created", "err", err)
		conn.Close(wsio.CloseInternalError, "session setup failed")
		go conn.Serve(unsessioned{s})
		return
	}
	if !id.ExpiresAt.IsZero() {
		// The same clock skew as at authentication, so a token accepted
		// within the leeway is not closed at once.
		c.expiresAt = id.ExpiresAt.Add(auth.Leeway).UnixNano()
	}
	s.metrics.connections.Inc()
	if c.setup() {
		c.start()
	}
	// The reader gets a goroutine of its own and this handler returns, so
	// net/http lets go of the request and its per-connection buffers
	// (about 10 KiB) for the life of the socket. c.HandleClose ends the
	// tracking.
	go conn.Serve(c)
}

// unsessioned handles a connection that never became a session: it
// ignores what arrives and ends the tracking when the socket closes.
type unsessioned struct{ s *Server }

func (unsessioned) HandleMessage(wsio.MessageType, []byte) {}
func (u unsessioned) HandleClose(wsio.StatusCode, error)   { u.s.conns.Done() }

// track counts a new connection unless the server is draining.
func (s *Server) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	s.conns.Add(1)
	return true
}

func (s *Server) isDraining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}
