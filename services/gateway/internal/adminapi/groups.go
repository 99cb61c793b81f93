package adminapi

import (
	"context"
	"net/http"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bachata-chat/bachata/libs/entity"
	deliveryv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/delivery/v1"
)

// Groups is the part of the delivery service's GroupService the API calls.
type Groups interface {
	AddMember(ctx context.Context, in *deliveryv1.AddMemberRequest, opts ...grpc.CallOption) (*deliveryv1.AddMemberResponse, error)
	RemoveMember(ctx context.Context, in *deliveryv1.RemoveMemberRequest, opts ...grpc.CallOption) (*deliveryv1.RemoveMemberResponse, error)
	ListMembers(ctx context.Context, in *deliveryv1.ListMembersRequest, opts ...grpc.CallOption) (*deliveryv1.ListMembersResponse, error)
}

// entityParam reads a path parameter naming an entity of kind: the
// (already unescaped) entity ID, or a bare name completed with the server.
func (a *api) entityParam(r *http.Request, name string, kind entity.Kind) (string, bool) {
	v := r.PathValue(name)
	if v == "" {
		return "", false
	}
	if id, err := entity.Parse(v); err == nil {
		return id.String(), id.Kind == kind
	}
	id, err := entity.New(kind, v, a.o.ServerName)
	if err != nil {
		return "", false
	}
	return id.String(), true
}

// roomAndUser reads {room} and {user}, answering 400 when either is bad.
func (a *api) roomAndUser(w http.ResponseWriter, r *http.Request) (room, user string, ok bool) {
	if room, ok = a.entityParam(r, "room", entity.KindRoom); !ok {
		writeError(w, http.StatusBadRequest, 0, "room: want a room name or ID !<room>@<server>")
		return "", "", false
	}
	if user, ok = a.entityParam(r, "user", entity.KindUser); !ok {
		writeError(w, http.StatusBadRequest, 0, "user: want a username or user ID @<user>@<server>")
		return "", "", false
	}
	return room, user, true
}

// putMember adds a member: 201 when new, 200 when it was one already.
func (a *api) putMember(w http.ResponseWriter, r *http.Request) {
	room, user, ok := a.roomAndUser(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.o.Timeout)
	defer cancel()
	resp, err := a.o.Groups.AddMember(ctx, &deliveryv1.AddMemberRequest{Room: room, User: user})
	if err != nil {
		a.serviceError(ctx, w, "add member", err)
		return
	}
	code := http.StatusOK
	if resp.GetAdded() {
		code = http.StatusCreated
	}
	writeJSON(w, code, map[string]any{"room": room, "user": user, "added": resp.GetAdded()})
}

// deleteMember removes a member: 200 when it was one, 404 when not.
func (a *api) deleteMember(w http.ResponseWriter, r *http.Request) {
	room, user, ok := a.roomAndUser(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.o.Timeout)
	defer cancel()
	resp, err := a.o.Groups.RemoveMember(ctx, &deliveryv1.RemoveMemberRequest{Room: room, User: user})
	if err != nil {
		a.serviceError(ctx, w, "remove member", err)
		return
	}
	code := http.StatusOK
	if !resp.GetRemoved() {
		code = http.StatusNotFound
	}
	writeJSON(w, code, map[string]any{"room": room, "user": user, "removed": resp.GetRemoved()})
}

// listMembers answers one page: ?cursor=&limit= (default 100, at most 1000).
func (a *api) listMembers(w http.ResponseWriter, r *http.Request) {
	room, ok := a.entityParam(r, "room", entity.KindRoom)
	if !ok {
		writeError(w, http.StatusBadRequest, 0, "room: want a room name or ID !<room>@<server>")
		return
	}
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, 0, "limit: want 1..1000")
			return
		}
		limit = n
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.o.Timeout)
	defer cancel()
	resp, err := a.o.Groups.ListMembers(ctx, &deliveryv1.ListMembersRequest{
		Room: room, Cursor: r.URL.Query().Get("cursor"), Limit: int32(limit), //nolint:gosec // 1..1000
	})
	if err != nil {
		a.serviceError(ctx, w, "list members", err)
		return
	}
	members := resp.GetMembers()
	if members == nil {
		members = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"room": room, "members": members, "next_cursor": resp.GetNextCursor()})
}

// serviceError answers a failed call: 400 for what the service refused as
// invalid, 504 for a deadline, 503 otherwise.
func (a *api) serviceError(ctx context.Context, w http.ResponseWriter, op string, err error) {
	switch status.Code(err) {
	case codes.InvalidArgument:
		writeError(w, http.StatusBadRequest, 0, status.Convert(err).Message())
	case codes.DeadlineExceeded:
		writeError(w, http.StatusGatewayTimeout, 0, op+": the service did not answer in time")
	default:
		a.o.Logger.WarnContext(ctx, "admin call failed", "op", op, "err", err)
		writeError(w, http.StatusServiceUnavailable, 0, op+": service unavailable, retry later")
	}
}
