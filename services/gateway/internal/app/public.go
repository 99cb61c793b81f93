package app

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/bachata-chat/bachata/services/gateway/internal/config"
	"github.com/bachata-chat/bachata/services/gateway/internal/devtoken"
	"github.com/bachata-chat/bachata/services/gateway/internal/origin"
	"github.com/bachata-chat/bachata/services/gateway/internal/webui"
)

// publicHandler is everything the WebSocket listener serves: the endpoint
// (GET /ws) and whatever else it routes, the demo chat page (GET /,
// GET /ui/…) from the same origin, and, only with cfg.DevTokens, the
// development sign-in POST /dev/token.
func publicHandler(cfg config.Config, endpoint http.Handler, groups devtoken.Groups, origins *origin.Policy, logger *slog.Logger) (http.Handler, error) {
	mux := http.NewServeMux()
	// The endpoint's own mux decides about every path not claimed below.
	mux.Handle("/", endpoint)
	page, err := webui.New(webui.Options{ServerName: cfg.ServerName, DevTokens: cfg.DevTokens})
	if err != nil {
		return nil, err
	}
	page.Register(mux)
	if !cfg.DevTokens {
		return mux, nil
	}
	err = devtoken.Register(mux, devtoken.Options{
		Secret:     []byte(cfg.JWTSecret),
		ServerName: cfg.ServerName,
		Groups:     groups,
		Timeout:    cfg.RPCTimeout,
		Origins:    origins,
		Logger:     logger,
	})
	if err != nil {
		return nil, fmt.Errorf("dev tokens: %w", err)
	}
	logger.Warn("DEVELOPMENT ONLY: POST " + devtoken.Path + " mints a token for any username (BACHATA_DEV_TOKENS); never enable it in production")
	return mux, nil
}
