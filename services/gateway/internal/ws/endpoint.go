package ws

import (
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

// serveWS is GET /ws?device=<id>. Everything that can be refused is
// refused before the upgrade, with a plain HTTP status a browser or a load
// balancer understands: 503 while draining, 401 for a missing or bad token,
// 400 for a bad device.
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if s.isDraining() {
		http.Error(w, "gateway is shutting down", http.StatusServiceUnavailable)
		return
	}
	id, err := s.auth.Authenticate(r)
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
	c, err := newClient(s, conn, session.Key{User: id.User, Device: device})
	if err != nil {
		// Only the random source can fail here.
		s.log.ErrorContext(r.Context(), "websocket session not created", "err", err)
		conn.Close(wsio.CloseInternalError, "session setup failed")
		go conn.Serve(unsessioned{s})
		return
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
