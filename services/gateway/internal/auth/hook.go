package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	authv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/auth/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DefaultHookTimeout bounds one call to the auth hook when HookOptions
// gives none. Every connection waits for it before its upgrade.
const DefaultHookTimeout = 2 * time.Second

// HookOptions configures NewHook.
type HookOptions struct {
	// Client calls the AuthHookService; the caller owns its connection.
	// Required.
	Client authv1.AuthHookServiceClient
	// Timeout bounds one call; default DefaultHookTimeout.
	Timeout time.Duration
	// ServerName is the server part of the identities.
	ServerName string
	// ValidUsername checks the hook's username against the username rule.
	// Required.
	ValidUsername func(string) bool
}

// Hook verifies tokens by asking an out-of-process AuthHookService
// (bachata.auth.v1), for deployments that keep their own sessions.
//
// The hook's answer maps to the client's as auth_hook.proto documents:
// UNAUTHENTICATED, PERMISSION_DENIED and INVALID_ARGUMENT refuse the token
// (401); any other error or a call past the deadline is ErrUnavailable
// (503), because a hook that is down says nothing about the token. A
// username outside the username rule is ErrBadSubject, an expires_at_ms
// already past (beyond Leeway) ErrExpired.
//
// A Hook is safe for concurrent use.
type Hook struct {
	opts HookOptions
	// now is the clock expires_at_ms is compared with; tests move it.
	now func() time.Time
}

// NewHook returns a verifier calling opts.Client.
func NewHook(opts HookOptions) (*Hook, error) {
	if opts.Client == nil {
		return nil, errors.New("new auth hook: no client")
	}
	if opts.ValidUsername == nil {
		return nil, errors.New("new auth hook: no username rule")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultHookTimeout
	}
	return &Hook{opts: opts, now: time.Now}, nil
}

// Authenticate implements Authenticator: every token goes to the hook.
func (h *Hook) Authenticate(ctx context.Context, r *http.Request) (Identity, error) {
	raw, err := Token(r)
	if err != nil {
		return Identity{}, err
	}
	return h.verify(ctx, raw, r)
}

// verify asks the hook about a raw token of request r.
func (h *Hook) verify(ctx context.Context, raw string, r *http.Request) (Identity, error) {
	cctx, cancel := context.WithTimeout(ctx, h.opts.Timeout)
	defer cancel()
	resp, err := h.opts.Client.Authenticate(cctx, &authv1.AuthenticateRequest{
		Token:      raw,
		Device:     r.URL.Query().Get("device"),
		RemoteAddr: r.RemoteAddr,
		Origin:     r.Header.Get("Origin"),
	})
	if err != nil {
		switch status.Code(err) {
		case codes.Unauthenticated, codes.PermissionDenied, codes.InvalidArgument:
			return Identity{}, fmt.Errorf("authenticate with hook: %w: %w", ErrInvalidToken, err)
		default:
			return Identity{}, fmt.Errorf("authenticate with hook: %w: %w", ErrUnavailable, err)
		}
	}
	username := resp.GetUsername()
	if !h.opts.ValidUsername(username) {
		return Identity{}, fmt.Errorf("authenticate with hook: username %q: %w", username, ErrBadSubject)
	}
	id := Identity{User: "@" + username + "@" + h.opts.ServerName, Username: username}
	if ms := resp.GetExpiresAtMs(); ms != 0 {
		id.ExpiresAt = time.UnixMilli(ms)
		if h.now().After(id.ExpiresAt.Add(Leeway)) {
			return Identity{}, fmt.Errorf("authenticate with hook: expired at %s: %w", id.ExpiresAt.UTC().Format(time.RFC3339), ErrExpired)
		}
	}
	return id, nil
}
