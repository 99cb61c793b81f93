// Package devtoken is the gateway's development sign-in: POST /dev/token
// mints a short-lived HS256 token for any valid username, so that the demo
// chat page (package webui) can sign in with just a name.
//
// FOR DEVELOPMENT ONLY. Anyone who can reach the endpoint can sign in as
// anyone. The gateway mounts it only when BACHATA_DEV_TOKENS=true, which
// config accepts only together with an HS256 secret, and logs a warning at
// start; `make run` (deploy/local) turns it on. A production deployment
// mints tokens in its own identity service and leaves this off.
//
// Besides the token, the endpoint makes the user a member of the demo room
// !lobby@<server name> (DefaultRoom), through the delivery service's
// GroupService like the admin API does, so a fresh suite has a room to try
// group messages in. A failure to join is logged and leaves the room out
// of the answer; the token is still issued.
package devtoken

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"

	"github.com/bachata-chat/bachata/libs/entity"
	deliveryv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/delivery/v1"
	"github.com/bachata-chat/bachata/services/gateway/internal/origin"
)

// Path is where the endpoint is mounted on the WebSocket listener.
const Path = "/dev/token"

// DefaultTTL is how long a minted token is valid. Short, so a token copied
// out of a developer's browser is soon worthless; the page asks for a new
// one whenever it reconnects after the old one expired.
const DefaultTTL = time.Hour

// DefaultRoom is the local part of the demo room every signed-in user
// joins: !lobby@<server name>.
const DefaultRoom = "lobby"

// Issuer is the iss claim of minted tokens, so they stand out in a log or
// a decoded token. The gateway does not check iss.
const Issuer = "bachata-dev-token"

// maxBody bounds the request body, {"user":"<name>"}: an entity ID is at
// most 255 bytes.
const maxBody = 1024

// Groups is the part of the delivery service's GroupService the endpoint
// calls; deliveryv1.GroupServiceClient satisfies it.
type Groups interface {
	AddMember(ctx context.Context, in *deliveryv1.AddMemberRequest, opts ...grpc.CallOption) (*deliveryv1.AddMemberResponse, error)
}

// Options configure the endpoint.
type Options struct {
	// Secret signs the tokens: the gateway's HS256 secret, so its own
	// verifier accepts them. Required.
	Secret []byte
	// ServerName completes user and room IDs. Required.
	ServerName string
	// TTL is how long a token is valid; zero means DefaultTTL.
	TTL time.Duration
	// Room is the local part of the room users join; empty means
	// DefaultRoom.
	Room string
	// Groups adds users to Room; nil joins no room.
	Groups Groups
	// Timeout bounds the AddMember call; zero means 5s.
	Timeout time.Duration
	// Origins are the browser origins allowed to ask, as for /ws; nil
	// allows any.
	Origins *origin.Policy
	// Logger receives warnings. Required.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// ErrNoSecret is returned by Register without an HS256 secret.
var ErrNoSecret = errors.New("devtoken: an HS256 secret is required")

// Response is the answer to a successful POST.
type Response struct {
	// Token is the HS256 JWT; pass it as token= on GET /ws.
	Token string `json:"token"`
	// User is the user's entity ID, "@<username>@<server name>".
	User string `json:"user"`
	// Username is the name asked for.
	Username string `json:"username"`
	// ExpiresAt is the token's exp in Unix milliseconds.
	ExpiresAt int64 `json:"expiresAt"`
	// Rooms lists the rooms the user was made a member of (or already
	// was): the demo room, unless joining it failed.
	Rooms []string `json:"rooms"`
}

type request struct {
	User string `json:"user"`
}

type handler struct {
	o    Options
	room string
}

// Register mounts POST /dev/token on mux.
func Register(mux *http.ServeMux, o Options) error {
	if len(o.Secret) == 0 {
		return ErrNoSecret
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Room == "" {
		o.Room = DefaultRoom
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	room, err := entity.New(entity.KindRoom, o.Room, o.ServerName)
	if err != nil {
		return fmt.Errorf("devtoken: room %q: %w", o.Room, err)
	}
	h := &handler{o: o, room: room.String()}
	mux.HandleFunc("POST "+Path, h.serve)
	return nil
}

func (h *handler) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	// A browser sends Origin with a cross-origin POST. JSON is required, so
	// such a request needs a CORS preflight, which this endpoint never
	// grants; the origin list is checked too, as for /ws.
	if !h.o.Origins.Allow(r.Header.Get("Origin")) {
		writeError(w, http.StatusForbidden, "origin not allowed")
		return
	}
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, `want Content-Type: application/json and {"user":"<name>"}`)
		return
	}
	var req request
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, `want {"user":"<name>"}`)
		return
	}
	user, err := entity.New(entity.KindUser, req.User, h.o.ServerName)
	if err != nil {
		writeError(w, http.StatusBadRequest, "user: want a username: lowercase a-z 0-9 . _ = - /")
		return
	}
	now := h.o.Now()
	exp := now.Add(h.o.TTL)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Issuer:    Issuer,
		Subject:   req.User,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(exp),
	}).SignedString(h.o.Secret)
	if err != nil {
		h.o.Logger.ErrorContext(r.Context(), "dev token not signed", "err", err)
		writeError(w, http.StatusInternalServerError, "cannot sign the token")
		return
	}
	resp := Response{Token: tok, User: user.String(), Username: req.User, ExpiresAt: exp.UnixMilli(), Rooms: []string{}}
	if h.join(r.Context(), user.String()) {
		resp.Rooms = append(resp.Rooms, h.room)
	}
	h.o.Logger.InfoContext(r.Context(), "dev token issued", "user", resp.User)
	writeJSON(w, http.StatusOK, resp)
}

// join makes user a member of the demo room and reports whether it is one.
func (h *handler) join(ctx context.Context, user string) bool {
	if h.o.Groups == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, h.o.Timeout)
	defer cancel()
	if _, err := h.o.Groups.AddMember(ctx, &deliveryv1.AddMemberRequest{Room: h.room, User: user}); err != nil {
		h.o.Logger.WarnContext(ctx, "dev token: demo room not joined", "room", h.room, "user", user, "err", err)
		return false
	}
	return true
}

func writeError(w http.ResponseWriter, status int, text string) {
	writeJSON(w, status, map[string]string{"error": text})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
