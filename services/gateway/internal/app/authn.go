package app

import (
	"fmt"
	"log/slog"

	"github.com/bachata-chat/bachata/libs/entity"
	authv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/auth/v1"
	"github.com/bachata-chat/bachata/services/gateway/internal/auth"
	"github.com/bachata-chat/bachata/services/gateway/internal/config"
	"google.golang.org/grpc"
)

// newAuthenticator builds the verifiers cfg configures: HS256 with the JWT
// secret, RS256/ES256 with the JWKS URL, and the auth hook, dialed with
// dial so its connection is closed with the others. The JWKS, if any,
// loads nothing until its Run is started.
func newAuthenticator(cfg config.Config, dial func(target string) (*grpc.ClientConn, error), logger *slog.Logger) (*auth.Selector, error) {
	sel := &auth.Selector{}
	if cfg.JWTSecret != "" {
		sel.HS256 = auth.NewHS256([]byte(cfg.JWTSecret), cfg.ServerName, entity.ValidLocal)
	}
	if cfg.JWKSURL != "" {
		j, err := auth.NewJWKS(auth.JWKSOptions{
			URL:           cfg.JWKSURL,
			Refresh:       cfg.JWKSRefresh,
			ServerName:    cfg.ServerName,
			ValidUsername: entity.ValidLocal,
			Logger:        logger,
		})
		if err != nil {
			return nil, fmt.Errorf("jwks: %w", err)
		}
		sel.JWKS = j
	}
	if cfg.AuthHookAddr != "" {
		cc, err := dial(cfg.AuthHookAddr)
		if err != nil {
			return nil, fmt.Errorf("auth hook: %w", err)
		}
		h, err := auth.NewHook(auth.HookOptions{
			Client:        authv1.NewAuthHookServiceClient(cc),
			Timeout:       cfg.AuthHookTimeout,
			ServerName:    cfg.ServerName,
			ValidUsername: entity.ValidLocal,
		})
		if err != nil {
			return nil, fmt.Errorf("auth hook: %w", err)
		}
		sel.Hook = h
	}
	if err := sel.Validate(); err != nil {
		return nil, err
	}
	return sel, nil
}
