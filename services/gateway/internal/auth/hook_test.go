package auth

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/bachata-chat/bachata/libs/grpcx"
	authv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/auth/v1"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// hookServer is a real AuthHookService on loopback answering with answer.
type hookServer struct {
	authv1.UnimplementedAuthHookServiceServer
	answer func(ctx context.Context, req *authv1.AuthenticateRequest) (*authv1.AuthenticateResponse, error)

	mu       sync.Mutex
	requests []*authv1.AuthenticateRequest
}

func (s *hookServer) Authenticate(ctx context.Context, req *authv1.AuthenticateRequest) (*authv1.AuthenticateResponse, error) {
	s.mu.Lock()
	s.requests = append(s.requests, proto.Clone(req).(*authv1.AuthenticateRequest))
	s.mu.Unlock()
	return s.answer(ctx, req)
}

func (s *hookServer) calls() []*authv1.AuthenticateRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*authv1.AuthenticateRequest(nil), s.requests...)
}

// startHook serves s on 127.0.0.1 and returns a Hook calling it through a
// connection dialed as the gateway dials it.
func startHook(t testing.TB, s *hookServer, timeout time.Duration) *Hook {
	t.Helper()
	lis, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	authv1.RegisterAuthHookServiceServer(srv, s)
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(lis) }()
	cc, err := grpcx.Dial(lis.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, cc.Close())
		srv.Stop()
		<-served
	})
	h, err := NewHook(HookOptions{
		Client: authv1.NewAuthHookServiceClient(cc), Timeout: timeout, ServerName: "example.org", ValidUsername: username,
	})
	require.NoError(t, err)
	return h
}

func TestHook(t *testing.T) {
	t.Parallel()
	expires := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	justPast := time.Now().Add(-time.Second).Truncate(time.Millisecond)
	answer := func(resp *authv1.AuthenticateResponse, err error) func(context.Context, *authv1.AuthenticateRequest) (*authv1.AuthenticateResponse, error) {
		return func(context.Context, *authv1.AuthenticateRequest) (*authv1.AuthenticateResponse, error) {
			return resp, err
		}
	}
	tests := []struct {
		name    string
		answer  func(context.Context, *authv1.AuthenticateRequest) (*authv1.AuthenticateResponse, error)
		want    Identity
		wantErr error
	}{
		{
			name:   "accepted with an expiry",
			answer: answer(&authv1.AuthenticateResponse{Username: "alice", ExpiresAtMs: expires.UnixMilli()}, nil),
			want:   Identity{User: "@alice@example.org", Username: "alice", ExpiresAt: expires},
		},
		{
			name:   "accepted, never expires",
			answer: answer(&authv1.AuthenticateResponse{Username: "alice"}, nil),
			want:   Identity{User: "@alice@example.org", Username: "alice"},
		},
		{
			name:   "expired within leeway",
			answer: answer(&authv1.AuthenticateResponse{Username: "alice", ExpiresAtMs: justPast.UnixMilli()}, nil),
			want:   Identity{User: "@alice@example.org", Username: "alice", ExpiresAt: justPast},
		},
		{name: "expired", answer: answer(&authv1.AuthenticateResponse{Username: "alice", ExpiresAtMs: time.Now().Add(-time.Minute).UnixMilli()}, nil), wantErr: ErrExpired},
		{name: "username outside the rule", answer: answer(&authv1.AuthenticateResponse{Username: "Alice@x"}, nil), wantErr: ErrBadSubject},
		{name: "no username", answer: answer(&authv1.AuthenticateResponse{}, nil), wantErr: ErrBadSubject},
		{name: "unauthenticated", answer: answer(nil, status.Error(codes.Unauthenticated, "no such session")), wantErr: ErrInvalidToken},
		{name: "permission denied", answer: answer(nil, status.Error(codes.PermissionDenied, "banned")), wantErr: ErrInvalidToken},
		{name: "invalid argument", answer: answer(nil, status.Error(codes.InvalidArgument, "not a session token")), wantErr: ErrInvalidToken},
		{name: "unavailable", answer: answer(nil, status.Error(codes.Unavailable, "database down")), wantErr: ErrUnavailable},
		{name: "internal", answer: answer(nil, status.Error(codes.Internal, "bug")), wantErr: ErrUnavailable},
		{name: "not implemented", answer: answer(nil, status.Error(codes.Unimplemented, "")), wantErr: ErrUnavailable},
		{
			name: "slower than the timeout",
			answer: func(ctx context.Context, _ *authv1.AuthenticateRequest) (*authv1.AuthenticateResponse, error) {
				<-ctx.Done() // the gateway gives up first
				return nil, status.FromContextError(ctx.Err()).Err()
			},
			wantErr: ErrUnavailable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := &hookServer{answer: tt.answer}
			h := startHook(t, s, 200*time.Millisecond)
			r := httptest.NewRequest(http.MethodGet, "/ws?device=phone&token=opaque-session-1", nil)
			r.Header.Set("Origin", "https://chat.example.org")
			got, err := h.Authenticate(t.Context(), r)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.Equal(t, tt.wantErr.Error(), Reason(err))
				return
			}
			require.NoError(t, err)
			require.True(t, tt.want.ExpiresAt.Equal(got.ExpiresAt), "ExpiresAt %s, want %s", got.ExpiresAt, tt.want.ExpiresAt)
			tt.want.ExpiresAt, got.ExpiresAt = time.Time{}, time.Time{}
			require.Equal(t, tt.want, got)

			calls := s.calls()
			require.Len(t, calls, 1)
			require.Equal(t, "opaque-session-1", calls[0].GetToken())
			require.Equal(t, "phone", calls[0].GetDevice())
			require.Equal(t, r.RemoteAddr, calls[0].GetRemoteAddr())
			require.Equal(t, "https://chat.example.org", calls[0].GetOrigin())
		})
	}
}

func TestHookClientGoneEndsTheCall(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{})
	s := &hookServer{answer: func(ctx context.Context, _ *authv1.AuthenticateRequest) (*authv1.AuthenticateResponse, error) {
		close(entered)
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}}
	h := startHook(t, s, time.Minute)
	ctx, cancel := context.WithCancel(t.Context())
	go func() { <-entered; cancel() }()
	start := time.Now()
	_, err := h.Authenticate(ctx, bearer("opaque"))
	require.ErrorIs(t, err, ErrUnavailable)
	require.Less(t, time.Since(start), waitFor, "the call ends with the request, not the timeout")
}

func TestNewHookNeedsClientAndUsernameRule(t *testing.T) {
	t.Parallel()
	_, err := NewHook(HookOptions{ValidUsername: username})
	require.Error(t, err)
	_, err = NewHook(HookOptions{Client: authv1.NewAuthHookServiceClient(nil)})
	require.Error(t, err)
}
