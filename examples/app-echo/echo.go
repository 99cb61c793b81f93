package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// request is the body Bachata's router sends for an "app" message (see
// docs/protocol.md, "app"). A backend written in another language decodes
// the same JSON; fields it does not know are ignored, as the contract asks.
type request struct {
	ID     string          `json:"id"`
	Time   int64           `json:"time"`
	From   string          `json:"from"`
	Device string          `json:"device"`
	Dest   string          `json:"dest,omitempty"`
	App    string          `json:"app"`
	Mod    string          `json:"mod"`
	Act    string          `json:"act"`
	Extra  json.RawMessage `json:"extra,omitempty"`
}

// reply is what the echo app answers; the router hands it to the sender as
// the "data" of an "app" message with the request's id.
type reply struct {
	// Echo is the request's extra as sent; null when there was none.
	Echo json.RawMessage `json:"echo"`
	// Act is the action the sender asked for.
	Act string `json:"act"`
	// Mod is the module the sender asked for.
	Mod string `json:"mod"`
	// From is who the router says sent it.
	From string `json:"from"`
}

// errorReply is the answer to a request the app did not understand. The
// router passes it on like any reply: an app's own errors are part of its
// JSON, since only a JSON value is a valid answer.
type errorReply struct {
	Error string `json:"error"`
}

// handle answers one request body, always with one JSON value.
func handle(body []byte) []byte {
	var req request
	if err := json.Unmarshal(body, &req); err != nil {
		return encode(errorReply{Error: "request is not JSON"})
	}
	if req.ID == "" || req.Act == "" {
		return encode(errorReply{Error: "request has no id or act"})
	}
	echo := req.Extra
	if len(echo) == 0 {
		echo = json.RawMessage("null")
	}
	return encode(reply{Echo: echo, Act: req.Act, Mod: req.Mod, From: req.From})
}

// encode marshals an answer. It cannot fail for these types (Extra came
// out of json.Unmarshal, so it is valid JSON); if it ever did, the sender
// still gets JSON.
func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(`{"error":"internal"}`)
	}
	return b
}

// subject is what the echo app subscribes to: every mod and act of app,
// "<prefix>.app.<app with '.' as '_'>.>", as natsx.Subjects.App builds it.
func subject(prefix, app string) string {
	return prefix + ".app." + strings.ReplaceAll(app, ".", "_") + ".>"
}

// serve answers requests on nc until ctx ends, then drains: requests
// already received are answered, new ones go to other instances of the
// queue group, and nc is closed. It returns when nc is closed or after
// drainTimeout.
func serve(ctx context.Context, nc *nats.Conn, cfg config, logger *slog.Logger) error {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	subj := subject(cfg.Prefix, cfg.App)
	_, err := nc.QueueSubscribe(subj, cfg.Queue, func(m *nats.Msg) {
		if err := m.Respond(handle(m.Data)); err != nil && !errors.Is(err, nats.ErrMsgNoReply) {
			logger.WarnContext(ctx, "reply failed", "subject", m.Subject, "err", err)
		}
	})
	if err != nil {
		nc.Close()
		return fmt.Errorf("subscribe %s: %w", subj, err)
	}
	if err := nc.Flush(); err != nil {
		nc.Close()
		return fmt.Errorf("subscribe %s: %w", subj, err)
	}
	logger.InfoContext(ctx, "answering app requests", "subject", subj, "queue", cfg.Queue)

	<-ctx.Done()
	logger.InfoContext(ctx, "draining")
	if err := nc.Drain(); err != nil {
		nc.Close()
		return fmt.Errorf("drain: %w", err)
	}
	t := time.NewTimer(cfg.DrainTimeout)
	defer t.Stop()
	select {
	case <-closed:
		return nil
	case <-t.C:
		nc.Close()
		return fmt.Errorf("drain: not done after %s", cfg.DrainTimeout)
	}
}
