package adminapi

import (
	"context"
	"encoding/json"
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
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	routerv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/router/v1"
)

const token = "admin-token-for-tests"

// router answers Route with what a test sets and records the requests.
type router struct {
	mu   sync.Mutex
	reqs []*routerv1.RouteRequest
	resp *routerv1.RouteResponse
	err  error
}

func (r *router) Route(_ context.Context, in *routerv1.RouteRequest, _ ...grpc.CallOption) (*routerv1.RouteResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, in)
	return r.resp, r.err
}

func serve(t *testing.T, rt *router, tok string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	Register(mux, Options{Token: tok, Router: rt, Timeout: time.Second, MaxBody: 4096, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func post(t *testing.T, s *httptest.Server, tok, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL+"/v1/messages", strings.NewReader(body))
	require.NoError(t, err)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := s.Client().Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

func TestPostedMessageIsRoutedAsTheSystems(t *testing.T) {
	rt := &router{resp: &routerv1.RouteResponse{Outcome: routerv1.Outcome_OUTCOME_QUEUED, Route: "direct", TimeMs: 42}}
	s := serve(t, rt, token)
	code, out := post(t, s, token, `{"id":"n1","type":"direct","dest":"bob","data":{"text":"maintenance at noon"}}`)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "queued", out["outcome"])
	require.Equal(t, "n1", out["id"])
	require.Len(t, rt.reqs, 1)
	require.Nil(t, rt.reqs[0].GetSender(), "a posted message has no sender: it is the system's")
	require.Equal(t, &commonv1.Message{Id: "n1", Type: "direct", Dest: "bob", Data: []byte(`{"text":"maintenance at noon"}`)}, rt.reqs[0].GetMessage())

	// Without an id, one is made.
	code, out = post(t, s, token, `{"type":"direct","dest":"bob","data":{}}`)
	require.Equal(t, http.StatusOK, code)
	require.True(t, strings.HasPrefix(out["id"].(string), "srv-"))
}

func TestPostAnswers(t *testing.T) {
	for name, tc := range map[string]struct {
		tok, body string
		resp      *routerv1.RouteResponse
		err       error
		status    int
		errCode   float64
	}{
		"no token":        {body: `{"type":"direct"}`, status: http.StatusUnauthorized},
		"wrong token":     {tok: "nope", body: `{"type":"direct"}`, status: http.StatusUnauthorized},
		"from set":        {tok: token, body: `{"type":"direct","dest":"bob","from":"@alice@localhost"}`, status: http.StatusBadRequest},
		"unknown field":   {tok: token, body: `{"type":"direct","dest":"bob","sign":"ab"}`, status: http.StatusBadRequest},
		"not json":        {tok: token, body: `{"type":`, status: http.StatusBadRequest},
		"no type":         {tok: token, body: `{"dest":"bob"}`, status: http.StatusBadRequest, errCode: 4002},
		"bad dest":        {tok: token, body: `{"type":"direct","dest":"Not A User!"}`, status: http.StatusBadRequest, errCode: 4006},
		"too big":         {tok: token, body: `{"type":"direct","data":"` + strings.Repeat("x", 5000) + `"}`, status: http.StatusRequestEntityTooLarge},
		"rejected":        {tok: token, body: `{"type":"nope"}`, resp: &routerv1.RouteResponse{Outcome: routerv1.Outcome_OUTCOME_REJECTED, Error: &commonv1.ErrorDetail{Code: 4100, Text: "unknown type"}}, status: http.StatusUnprocessableEntity, errCode: 4100},
		"router down":     {tok: token, body: `{"type":"direct","dest":"bob"}`, err: status.Error(codes.Unavailable, "down"), status: http.StatusServiceUnavailable, errCode: 5001},
		"router too slow": {tok: token, body: `{"type":"direct","dest":"bob"}`, err: status.Error(codes.DeadlineExceeded, "slow"), status: http.StatusGatewayTimeout, errCode: 5002},
	} {
		t.Run(name, func(t *testing.T) {
			rt := &router{resp: tc.resp, err: tc.err}
			code, out := post(t, serve(t, rt, token), tc.tok, tc.body)
			require.Equal(t, tc.status, code, "body %v", out)
			if tc.errCode != 0 {
				require.InDelta(t, tc.errCode, out["errCode"], 0)
			}
			if tc.status == http.StatusBadRequest || tc.status == http.StatusUnauthorized {
				require.Empty(t, rt.reqs, "nothing routed")
			}
		})
	}
}

func TestDisabledWithoutToken(t *testing.T) {
	code, _ := post(t, serve(t, &router{}, ""), "anything", `{"type":"direct"}`)
	require.Equal(t, http.StatusForbidden, code)
}
