// Package adminapi is the HTTP/JSON face of the admin API on the gateway's
// admin listener. Every call needs the bearer token BACHATA_ADMIN_TOKEN and
// is carried out over gRPC by the service that owns it.
package adminapi

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bachata-chat/bachata/libs/protocol"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	routerv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/router/v1"
)

// Router is the part of the router the API calls;
// routerv1.RouterServiceClient satisfies it.
type Router interface {
	Route(ctx context.Context, in *routerv1.RouteRequest, opts ...grpc.CallOption) (*routerv1.RouteResponse, error)
}

// Options configure the API.
type Options struct {
	// Token is the bearer token every call must carry; empty disables the
	// API (403 on every call).
	Token string
	// Router routes server-created messages.
	Router Router
	// Groups keeps room membership; deliveryv1.GroupServiceClient.
	Groups Groups
	// Presence answers who is online; presencev1.PresenceServiceClient.
	Presence Presence
	// NATS carries kicks to the gateways holding a user's connections.
	NATS Publisher
	// NATSPrefix starts every subject.
	NATSPrefix string
	// ServerName completes bare names: "general" is !general@<server>,
	// "bob" is @bob@<server>.
	ServerName string
	// Timeout bounds one call to a service.
	Timeout time.Duration
	// MaxBody bounds a request body in bytes.
	MaxBody int64
	// Logger receives the API's logs.
	Logger *slog.Logger
}

// Register adds the API's routes to mux under /v1/.
func Register(mux *http.ServeMux, o Options) {
	a := &api{o: o}
	mux.Handle("POST /v1/messages", a.authorized(a.postMessage))
	mux.Handle("PUT /v1/groups/{room}/members/{user}", a.authorized(a.putMember))
	mux.Handle("DELETE /v1/groups/{room}/members/{user}", a.authorized(a.deleteMember))
	mux.Handle("GET /v1/groups/{room}/members", a.authorized(a.listMembers))
	mux.Handle("GET /v1/presence/{user}", a.authorized(a.getPresence))
	mux.Handle("DELETE /v1/users/{user}/connections", a.authorized(a.deleteConnections))
}

type api struct{ o Options }

// authorized checks the bearer token in constant time before h runs.
func (a *api) authorized(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.o.Token == "" {
			writeError(w, http.StatusForbidden, 0, "admin API disabled: set BACHATA_ADMIN_TOKEN")
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(a.o.Token)) != 1 {
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeError(w, http.StatusUnauthorized, 0, "missing or wrong bearer token")
			return
		}
		h(w, r)
	})
}

// messageRequest is the body of POST /v1/messages: a data message created
// by the server. from must be empty: the message is the system's.
type messageRequest struct {
	ID   string          `json:"id,omitempty"`
	Type string          `json:"type"`
	From string          `json:"from,omitempty"`
	Dest string          `json:"dest,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

// messageResponse is what POST /v1/messages answers.
type messageResponse struct {
	ID      string            `json:"id"`
	Outcome string            `json:"outcome"`
	Route   string            `json:"route,omitempty"`
	Time    int64             `json:"time,omitempty"`
	Replies []json.RawMessage `json:"replies,omitempty"`
	errorBody
}

type errorBody struct {
	ErrCode    int             `json:"errCode,omitempty"`
	ErrText    string          `json:"errText,omitempty"`
	ErrPayload json.RawMessage `json:"errPayload,omitempty"`
}

// postMessage routes a server-created message through the same chain as
// a device's, with no sender: the routes treat it as the system's.
func (a *api) postMessage(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.o.MaxBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, 0, fmt.Sprintf("body over %d bytes", a.o.MaxBody))
		return
	}
	var req messageRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, 0, "body: "+err.Error())
		return
	}
	if req.From != "" {
		writeError(w, http.StatusBadRequest, 0, "from must be empty: a message posted here is the system's")
		return
	}
	if req.ID == "" {
		req.ID = newID()
	}
	// The message goes through the client protocol's decoder, so it meets
	// exactly the rules a device's message meets.
	frame, err := json.Marshal(req)
	if err != nil {
		writeError(w, http.StatusBadRequest, 0, "body: "+err.Error())
		return
	}
	f, err := protocol.Decoder{MaxFrameSize: int(a.o.MaxBody)}.Decode(frame)
	if err != nil {
		e := protocol.AsError(err)
		writeError(w, http.StatusBadRequest, int(e.Code), e.ErrText())
		return
	}
	m, ok := f.(*protocol.DataMessage)
	if !ok {
		writeError(w, http.StatusBadRequest, int(protocol.CodeTypeNotAllowed), "type must be a data message type (a string)")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.o.Timeout)
	defer cancel()
	resp, err := a.o.Router.Route(ctx, &routerv1.RouteRequest{
		Message: &commonv1.Message{Id: m.ID, Type: m.Type, Dest: m.Dest, Data: m.Data},
	})
	if err != nil {
		a.o.Logger.WarnContext(ctx, "admin message not routed", "id", m.ID, "err", err)
		code, httpStatus := protocol.CodeUnavailable, http.StatusServiceUnavailable
		if status.Code(err) == codes.DeadlineExceeded {
			code, httpStatus = protocol.CodeTimeout, http.StatusGatewayTimeout
		}
		writeJSON(w, httpStatus, messageResponse{ID: m.ID, Outcome: "failed", errorBody: errorBody{
			ErrCode: int(code), ErrText: protocol.NewError(code).ErrText(),
		}})
		return
	}
	out := messageResponse{ID: m.ID, Route: resp.GetRoute(), Time: resp.GetTimeMs()}
	httpStatus := http.StatusOK
	switch resp.GetOutcome() {
	case routerv1.Outcome_OUTCOME_QUEUED:
		out.Outcome = "queued"
	case routerv1.Outcome_OUTCOME_DUPLICATE:
		out.Outcome = "duplicate"
	case routerv1.Outcome_OUTCOME_SENT:
		out.Outcome = "sent"
	case routerv1.Outcome_OUTCOME_REPLIED:
		out.Outcome = "replied"
		for _, rep := range resp.GetReplies() {
			b, err := json.Marshal(map[string]any{"id": rep.GetId(), "type": rep.GetType(), "data": json.RawMessage(rep.GetData())})
			if err == nil {
				out.Replies = append(out.Replies, b)
			}
		}
	default:
		out.Outcome = "rejected"
		httpStatus = http.StatusUnprocessableEntity
		e := resp.GetError()
		out.errorBody = errorBody{ErrCode: int(e.GetCode()), ErrText: e.GetText()}
		if len(e.GetPayload()) > 0 {
			out.ErrPayload = e.GetPayload()
		}
	}
	writeJSON(w, httpStatus, out)
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "srv-" + hex.EncodeToString(b[:])
}

func writeError(w http.ResponseWriter, httpStatus, code int, text string) {
	writeJSON(w, httpStatus, errorBody{ErrCode: code, ErrText: text})
}

func writeJSON(w http.ResponseWriter, httpStatus int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpStatus)
	_, _ = w.Write(append(b, '\n'))
}
