package adminapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	deliveryv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/delivery/v1"
)

// memberStore is an in-test GroupService: one room per key.
type memberStore struct {
	rooms map[string]map[string]bool
	err   error
}

func (m *memberStore) AddMember(_ context.Context, in *deliveryv1.AddMemberRequest, _ ...grpc.CallOption) (*deliveryv1.AddMemberResponse, error) {
	if m.err != nil {
		return nil, m.err
	}
	if m.rooms[in.GetRoom()] == nil {
		m.rooms[in.GetRoom()] = map[string]bool{}
	}
	added := !m.rooms[in.GetRoom()][in.GetUser()]
	m.rooms[in.GetRoom()][in.GetUser()] = true
	return &deliveryv1.AddMemberResponse{Added: added}, nil
}

func (m *memberStore) RemoveMember(_ context.Context, in *deliveryv1.RemoveMemberRequest, _ ...grpc.CallOption) (*deliveryv1.RemoveMemberResponse, error) {
	removed := m.rooms[in.GetRoom()][in.GetUser()]
	delete(m.rooms[in.GetRoom()], in.GetUser())
	return &deliveryv1.RemoveMemberResponse{Removed: removed}, nil
}

func (m *memberStore) ListMembers(_ context.Context, in *deliveryv1.ListMembersRequest, _ ...grpc.CallOption) (*deliveryv1.ListMembersResponse, error) {
	if in.GetCursor() == "bad" {
		return nil, status.Error(codes.InvalidArgument, "cursor: not one a listing returned")
	}
	var out []string
	for u := range m.rooms[in.GetRoom()] {
		out = append(out, u)
	}
	return &deliveryv1.ListMembersResponse{Members: out}, nil
}

func TestGroupMembership(t *testing.T) {
	ms := &memberStore{rooms: map[string]map[string]bool{}}
	mux := http.NewServeMux()
	Register(mux, Options{Token: token, Groups: ms, ServerName: "localhost", Timeout: time.Second, MaxBody: 4096,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	call := func(method, path string) (int, map[string]any) {
		req, err := http.NewRequestWithContext(t.Context(), method, s.URL+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := s.Client().Do(req)
		require.NoError(t, err)
		defer func() { _ = resp.Body.Close() }()
		var out map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		return resp.StatusCode, out
	}

	code, out := call(http.MethodPut, "/v1/groups/general/members/bob")
	require.Equal(t, http.StatusCreated, code, out)
	require.Equal(t, "!general@localhost", out["room"])
	require.Equal(t, "@bob@localhost", out["user"])
	code, _ = call(http.MethodPut, "/v1/groups/%21general%40localhost/members/%40bob%40localhost")
	require.Equal(t, http.StatusOK, code, "the same member by escaped entity IDs")
	code, _ = call(http.MethodPut, "/v1/groups/general/members/alice")
	require.Equal(t, http.StatusCreated, code)

	code, out = call(http.MethodGet, "/v1/groups/general/members")
	require.Equal(t, http.StatusOK, code)
	require.ElementsMatch(t, []any{"@bob@localhost", "@alice@localhost"}, out["members"])

	code, _ = call(http.MethodDelete, "/v1/groups/general/members/bob")
	require.Equal(t, http.StatusOK, code)
	code, _ = call(http.MethodDelete, "/v1/groups/general/members/bob")
	require.Equal(t, http.StatusNotFound, code)

	for _, bad := range []string{
		"/v1/groups/Gen%20eral/members/bob",
		"/v1/groups/general/members/Not%20A%20User",
		"/v1/groups/%40bob%40localhost/members/bob", // a user ID as the room
		"/v1/groups/general/members/%21general%40localhost",
	} {
		code, _ := call(http.MethodPut, bad)
		require.Equal(t, http.StatusBadRequest, code, bad)
	}
	code, _ = call(http.MethodGet, "/v1/groups/general/members?limit=0")
	require.Equal(t, http.StatusBadRequest, code)
	code, _ = call(http.MethodGet, "/v1/groups/general/members?cursor=bad")
	require.Equal(t, http.StatusBadRequest, code)

	ms.err = status.Error(codes.Unavailable, "down")
	code, _ = call(http.MethodPut, "/v1/groups/general/members/carol")
	require.Equal(t, http.StatusServiceUnavailable, code)
}
