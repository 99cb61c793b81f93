package devtoken

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/bachata-chat/bachata/libs/entity"
	deliveryv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/delivery/v1"
	"github.com/bachata-chat/bachata/services/gateway/internal/auth"
	"github.com/bachata-chat/bachata/services/gateway/internal/origin"
)

const secret = "devtoken-test-secret-0123456789"

// groups records AddMember calls and fails them when err is set.
type groups struct {
	mu    sync.Mutex
	calls []*deliveryv1.AddMemberRequest
	err   error
}

func (g *groups) AddMember(_ context.Context, in *deliveryv1.AddMemberRequest, _ ...grpc.CallOption) (*deliveryv1.AddMemberResponse, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, in)
	if g.err != nil {
		return nil, g.err
	}
	return &deliveryv1.AddMemberResponse{Added: true}, nil
}

func (g *groups) Calls() []*deliveryv1.AddMemberRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]*deliveryv1.AddMemberRequest(nil), g.calls...)
}

func newServer(t *testing.T, o Options) *httptest.Server {
	t.Helper()
	o.Secret = []byte(secret)
	o.ServerName = "example.org"
	o.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	mux := http.NewServeMux()
	require.NoError(t, Register(mux, o))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, srv *httptest.Server, body string, header map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+Path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer func() { require.NoError(t, resp.Body.Close()) }()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, b
}

func TestTokenIsAcceptedByTheGatewaysVerifier(t *testing.T) {
	t.Parallel()
	g := &groups{}
	now := time.Now().Truncate(time.Second)
	srv := newServer(t, Options{Groups: g, TTL: 10 * time.Minute, Now: func() time.Time { return now }})

	code, h, body := post(t, srv, `{"user":"alice"}`, nil)
	require.Equal(t, http.StatusOK, code, string(body))
	require.Equal(t, "no-store", h.Get("Cache-Control"))
	var resp Response
	require.NoError(t, json.Unmarshal(body, &resp))
	require.Equal(t, "@alice@example.org", resp.User)
	require.Equal(t, "alice", resp.Username)
	require.Equal(t, now.Add(10*time.Minute).UnixMilli(), resp.ExpiresAt)
	require.Equal(t, []string{"!lobby@example.org"}, resp.Rooms)
	require.Len(t, g.Calls(), 1)
	require.Equal(t, "!lobby@example.org", g.Calls()[0].GetRoom())
	require.Equal(t, "@alice@example.org", g.Calls()[0].GetUser())

	// The verifier /ws uses accepts it, for the right user and expiry.
	v := auth.NewHS256([]byte(secret), "example.org", entity.ValidLocal)
	r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/ws?token="+resp.Token, nil)
	id, err := v.Authenticate(t.Context(), r)
	require.NoError(t, err)
	require.Equal(t, "@alice@example.org", id.User)
	require.Equal(t, now.Add(10*time.Minute), id.ExpiresAt)

	// Signed with another secret, it is refused.
	other := auth.NewHS256([]byte("another-secret-0123456789"), "example.org", entity.ValidLocal)
	_, err = other.Authenticate(t.Context(), r)
	require.ErrorIs(t, err, auth.ErrInvalidToken)
}

func TestRoomJoinFailureStillIssuesToken(t *testing.T) {
	t.Parallel()
	srv := newServer(t, Options{Groups: &groups{err: errors.New("delivery down")}})
	code, _, body := post(t, srv, `{"user":"bob"}`, nil)
	require.Equal(t, http.StatusOK, code, string(body))
	var resp Response
	require.NoError(t, json.Unmarshal(body, &resp))
	require.NotEmpty(t, resp.Token)
	require.Empty(t, resp.Rooms)
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	policy, err := origin.Parse("https://chat.example.org")
	require.NoError(t, err)
	g := &groups{}
	srv := newServer(t, Options{Groups: g, Origins: policy})
	for _, tc := range []struct {
		name   string
		body   string
		header map[string]string
		want   int
	}{
		{name: "upper case", body: `{"user":"Alice"}`, want: http.StatusBadRequest},
		{name: "empty", body: `{"user":""}`, want: http.StatusBadRequest},
		{name: "entity ID", body: `{"user":"@alice@example.org"}`, want: http.StatusBadRequest},
		{name: "not JSON", body: `user=alice`, want: http.StatusBadRequest},
		{name: "unknown field", body: `{"user":"alice","admin":true}`, want: http.StatusBadRequest},
		{name: "too large", body: `{"user":"` + strings.Repeat("a", 2000) + `"}`, want: http.StatusBadRequest},
		{name: "form post", body: `{"user":"alice"}`, header: map[string]string{"Content-Type": "text/plain"}, want: http.StatusUnsupportedMediaType},
		{name: "foreign origin", body: `{"user":"alice"}`, header: map[string]string{"Origin": "https://evil.example.com"}, want: http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := post(t, srv, tc.body, tc.header)
			require.Equal(t, tc.want, code, string(body))
			var e map[string]string
			require.NoError(t, json.Unmarshal(body, &e))
			require.NotEmpty(t, e["error"])
		})
	}
	require.Empty(t, g.Calls(), "no refused request joins the room")

	code, _, body := post(t, srv, `{"user":"alice"}`, map[string]string{"Origin": "https://chat.example.org"})
	require.Equal(t, http.StatusOK, code, string(body))

	resp, err := srv.Client().Get(srv.URL + Path)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

func TestRegisterNeedsSecret(t *testing.T) {
	t.Parallel()
	err := Register(http.NewServeMux(), Options{ServerName: "localhost", Logger: slog.Default()})
	require.ErrorIs(t, err, ErrNoSecret)
}
