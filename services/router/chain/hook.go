package chain

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bachata-chat/bachata/libs/entity"
	"github.com/bachata-chat/bachata/libs/grpcx"
	"github.com/bachata-chat/bachata/libs/protocol"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	hookv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/hook/v1"
)

// DefaultHookTimeout bounds one call to a route hook when no WithHookTimeout
// is given. A hook sits in the path of every message of its types, so it
// must answer much faster than the gateway's rpc-timeout (10s).
const DefaultHookTimeout = 200 * time.Millisecond

// The range of codes a hook may reject with besides those of the
// libs/protocol table; the suite never uses it.
const (
	minCustomCode protocol.Code = 10000
	maxCustomCode protocol.Code = 19999
)

// ErrBadHook means NewHook, or a "hook" spec in a routes file, was given an
// unusable configuration: no name, no client, an empty type.
var ErrBadHook = errors.New("chain: invalid hook route configuration")

// ErrHookAnswer means a route hook answered something the router cannot
// carry out, like a reject code outside the allowed ranges or a deliver
// without recipients. The hook's failure policy applies, as for a call that
// failed.
var ErrHookAnswer = errors.New("route hook answered an invalid decision")

// HookPolicy says what a Hook does when its service fails: the call
// returns an error or times out, or the answer is invalid (ErrHookAnswer).
type HookPolicy int

const (
	// HookFailClosed refuses the message: Process returns an error wrapping
	// ErrUnavailable, so the sender gets a retryable 5001 and resends. It
	// is the default because it never lets a message past a hook that did
	// not look at it: a hook that filters messages, or owns a type no other
	// route knows, must not be skipped silently.
	HookFailClosed HookPolicy = iota
	// HookFailOpen skips the hook: the message goes on to the next route as
	// if the hook had passed. For hooks that only add to a message's
	// handling, where availability matters more.
	HookFailOpen
)

// String is the policy's name in a routes file: "closed" or "open".
func (p HookPolicy) String() string {
	if p == HookFailOpen {
		return "open"
	}
	return "closed"
}

// Hook is a custom route out of process: it offers each message of its
// types to a RouteHookService (bachata.hook.v1) over gRPC and carries out the
// decision the service answers, so routes can be written in any language.
//
// A hook failure is a call that fails or outlives the deadline (default
// DefaultHookTimeout), or an answer that breaks the rules of hook.proto: no
// decision, a reject code outside 10000-19999 and the libs/protocol table,
// an errPayload that is not a JSON object, a deliver without recipients or
// with a recipient that is not one user or room ID, a reply a client's
// decoder would refuse. Every failure is logged as a warning and handled
// by the policy (HookFailClosed by default, or HookFailOpen). When the
// caller itself gave up, Process returns the context's error whatever the
// policy: nobody reads the answer.
//
// A Hook is safe for concurrent use. The client's connection belongs to the
// caller, except for hooks built by the registry's "hook" factory: those
// own the connection they dialed and close it in Close.
type Hook struct {
	name    string
	client  hookv1.RouteHookServiceClient
	types   []string
	timeout time.Duration
	policy  HookPolicy
	logger  *slog.Logger

	// conn is the connection the hook owns, closed once by Close; nil when
	// the caller owns it.
	conn      io.Closer
	closeOnce sync.Once
	closeErr  error
}

// HookOption configures NewHook.
type HookOption func(*Hook)

// WithHookTypes offers the hook only messages of these types; the others
// pass without a call. None (the default) offers every type.
func WithHookTypes(types ...string) HookOption {
	return func(h *Hook) { h.types = slices.Clone(types) }
}

// WithHookTimeout bounds each call to the hook (default DefaultHookTimeout;
// zero or less means the default).
func WithHookTimeout(d time.Duration) HookOption {
	return func(h *Hook) {
		if d > 0 {
			h.timeout = d
		}
	}
}

// WithHookPolicy says what to do when the hook fails (default
// HookFailClosed).
func WithHookPolicy(p HookPolicy) HookOption {
	return func(h *Hook) { h.policy = p }
}

// WithHookLogger logs hook failures (default: discarded).
func WithHookLogger(l *slog.Logger) HookOption {
	return func(h *Hook) {
		if l != nil {
			h.logger = l
		}
	}
}

// NewHook returns the hook route called name in the chain, calling client.
// It fails with ErrBadHook when the name is empty or holds a space or
// control character, when client is nil, or when a type is empty.
func NewHook(name string, client hookv1.RouteHookServiceClient, opts ...HookOption) (*Hook, error) {
	if err := checkHookName(name); err != nil {
		return nil, fmt.Errorf("new hook route: %w: %w", ErrBadHook, err)
	}
	if client == nil {
		return nil, fmt.Errorf("new hook route %q: %w: no client", name, ErrBadHook)
	}
	h := &Hook{
		name:    name,
		client:  client,
		timeout: DefaultHookTimeout,
		logger:  slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(h)
	}
	if slices.Contains(h.types, "") {
		return nil, fmt.Errorf("new hook route %q: %w: empty type", name, ErrBadHook)
	}
	if h.policy != HookFailClosed && h.policy != HookFailOpen {
		return nil, fmt.Errorf("new hook route %q: %w: unknown policy %d", name, ErrBadHook, h.policy)
	}
	return h, nil
}

// checkHookName reports a name unfit for the chain, logs and metric
// labels: empty, or holding a space or control character.
func checkHookName(name string) error {
	if name == "" || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("name %q: want a non-empty name without spaces", name)
	}
	return nil
}

// Name implements Route: the configured name.
func (h *Hook) Name() string { return h.name }

// Types lists the types offered to the hook; empty means every type.
func (h *Hook) Types() []string { return slices.Clone(h.types) }

// Timeout is the bound on each call.
func (h *Hook) Timeout() time.Duration { return h.timeout }

// Policy is what the hook does on failure.
func (h *Hook) Policy() HookPolicy { return h.policy }

// Close closes the connection the hook owns, once; it does nothing for a
// hook whose client belongs to the caller. A call after Close is a hook
// failure.
func (h *Hook) Close() error {
	h.closeOnce.Do(func() {
		if h.conn != nil {
			if err := h.conn.Close(); err != nil {
				h.closeErr = fmt.Errorf("close hook %s: %w", h.name, err)
			}
		}
	})
	return h.closeErr
}

// Process implements Route.
func (h *Hook) Process(ctx context.Context, req *Request) (Decision, error) {
	m := req.Message
	if len(h.types) > 0 && !slices.Contains(h.types, m.GetType()) {
		return Pass(), nil
	}
	cctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	resp, err := h.client.Process(cctx, &hookv1.ProcessRequest{Message: m, Sender: req.Sender, Route: h.name})
	if err != nil {
		if ctx.Err() != nil {
			// The caller gave up (its deadline or a closing connection):
			// nobody reads an answer now, and the policy is not for that.
			return Decision{}, fmt.Errorf("hook %s: %w", h.name, ctx.Err())
		}
		return h.fail(ctx, req, fmt.Errorf("call: %w", err))
	}
	d, err := decisionOf(req, resp)
	if err != nil {
		return h.fail(ctx, req, err)
	}
	return d, nil
}

// fail applies the policy to a hook failure.
func (h *Hook) fail(ctx context.Context, req *Request, err error) (Decision, error) {
	m := req.Message
	h.logger.WarnContext(ctx, "route hook failed",
		"hook", h.name, "policy", h.policy.String(), "id", m.GetId(), "type", m.GetType(), "from", m.GetFrom(), "err", err)
	if h.policy == HookFailOpen {
		return Pass(), nil
	}
	return Decision{}, fmt.Errorf("hook %s: %w: %w", h.name, ErrUnavailable, err)
}

// decisionOf turns the hook's answer to req into a Decision, or an error
// wrapping ErrHookAnswer saying what is wrong with it.
func decisionOf(req *Request, resp *hookv1.ProcessResponse) (Decision, error) {
	switch d := resp.GetDecision().(type) {
	case *hookv1.ProcessResponse_Pass:
		return Pass(), nil
	case *hookv1.ProcessResponse_Reply:
		replies := d.Reply.GetMessages()
		for i, r := range replies {
			if problem := checkHookReply(r); problem != "" {
				return Decision{}, fmt.Errorf("%w: reply %d: %s", ErrHookAnswer, i+1, problem)
			}
		}
		return Reply(replies...), nil
	case *hookv1.ProcessResponse_Reject:
		e, problem := hookRejection(req, d.Reject)
		if problem != "" {
			return Decision{}, fmt.Errorf("%w: reject: %s", ErrHookAnswer, problem)
		}
		return Reject(e), nil
	case *hookv1.ProcessResponse_Deliver:
		recipients := d.Deliver.GetRecipients()
		if len(recipients) == 0 {
			return Decision{}, fmt.Errorf("%w: deliver: no recipients", ErrHookAnswer)
		}
		for i, r := range recipients {
			if problem := checkHookRecipient(r.GetUser(), r.GetRoom()); problem != "" {
				return Decision{}, fmt.Errorf("%w: deliver: recipient %d: %s", ErrHookAnswer, i+1, problem)
			}
		}
		return Deliver(Delivery{Recipients: recipients, Receipt: d.Deliver.GetReceipt()}), nil
	default:
		return Decision{}, fmt.Errorf("%w: no decision", ErrHookAnswer)
	}
}

// checkHookReply returns what makes r unfit to send to the sender, or "":
// the frame it makes is run through a client's decoder with the default
// limits, so the sender never gets a frame its own decoder refuses.
func checkHookReply(r *commonv1.Message) string {
	// Valid first: AppendData copies data verbatim, and bytes such as
	// `1,"sign":"00"` would otherwise decode as a different frame.
	if len(r.GetData()) > 0 && !json.Valid(r.GetData()) {
		return "data is not one JSON value"
	}
	frame := protocol.AppendData(nil, &protocol.DataMessage{
		ID: r.GetId(), Type: r.GetType(), Time: r.GetTimeMs(), From: r.GetFrom(),
		Dest: r.GetDest(), Data: r.GetData(), Sign: r.GetSign(),
	})
	f, err := protocol.Decoder{}.Decode(frame)
	if err != nil {
		return err.Error()
	}
	if _, ok := f.(*protocol.DataMessage); !ok {
		return "not a data message"
	}
	return ""
}

// hookRejection returns the hook's reject as a protocol.Error, or what is
// wrong with it.
func hookRejection(req *Request, r *hookv1.Reject) (*protocol.Error, string) {
	code := protocol.Code(r.GetCode())
	if !code.Known() && (code < minCustomCode || code > maxCustomCode) {
		return nil, fmt.Sprintf("code %d is neither in the protocol table nor in %d-%d", r.GetCode(), minCustomCode, maxCustomCode)
	}
	if p := bytes.TrimSpace(r.GetPayload()); len(p) > 0 {
		if p[0] != '{' || !json.Valid(p) {
			return nil, "payload is not a JSON object"
		}
		// protocol.AppendError would quietly send {} for a payload nested
		// deeper than a client's decoder accepts, so it is checked here, as
		// deep in a frame as it will be: {"data":{"errPayload":…}}.
		frame := protocol.AppendData(nil, &protocol.DataMessage{
			ID: "x", Type: protocol.TypeError, Data: slices.Concat([]byte(`{"errPayload":`), p, []byte(`}`)),
		})
		if _, err := (protocol.Decoder{}).Decode(frame); err != nil {
			return nil, "payload: " + err.Error()
		}
	}
	e := &protocol.Error{Code: code, Text: r.GetText(), Payload: r.GetPayload()}
	if n := len(protocol.AppendError(nil, e.For(req.Message.GetId(), req.Message.GetType()))); n > protocol.DefaultMaxFrameSize {
		return nil, fmt.Sprintf("the error reply would be %d bytes, limit %d", n, protocol.DefaultMaxFrameSize)
	}
	return e, ""
}

// checkHookRecipient returns what makes a recipient unfit, or "": it names
// a user ID or a room ID, not both.
func checkHookRecipient(user, room string) string {
	switch {
	case (user == "") == (room == ""):
		return "want exactly one of user and room"
	case user != "":
		if id, err := entity.Parse(user); err != nil || id.Kind != entity.KindUser {
			return fmt.Sprintf("user %q is not a user ID", user)
		}
	default:
		if id, err := entity.Parse(room); err != nil || id.Kind != entity.KindRoom {
			return fmt.Sprintf("room %q is not a room ID", room)
		}
	}
	return ""
}

// hookOptions are the options of a "hook" spec in a routes file.
type hookOptions struct {
	Name    string   `json:"name"`
	Target  string   `json:"target"`
	Types   []string `json:"types"`
	Timeout string   `json:"timeout"`
	Failure string   `json:"failure"`
}

// newHookRoute is the registry's "hook" factory: it checks every option,
// reporting all problems at once, then dials the target. The connection is
// lazy, so a router starts before its hooks; the hook owns it.
func newHookRoute(d Deps, o json.RawMessage) (Route, error) {
	var opts hookOptions
	if err := DecodeOptions(o, &opts); err != nil {
		return nil, fmt.Errorf("hook: %w: %w", ErrBadHook, err)
	}
	var (
		errs []error
		hops = []HookOption{WithHookTypes(opts.Types...), WithHookLogger(d.Logger)}
	)
	if opts.Name == "" {
		errs = append(errs, errors.New("name: required"))
	} else if err := checkHookName(opts.Name); err != nil {
		errs = append(errs, err)
	}
	switch {
	case opts.Target == "":
		errs = append(errs, errors.New("target: required"))
	case !grpcx.ValidTarget(opts.Target):
		errs = append(errs, fmt.Errorf("target %q: want host:port, dns:///host:port or a comma-separated list of host:port", opts.Target))
	}
	if slices.Contains(opts.Types, "") {
		errs = append(errs, errors.New("types: empty type"))
	}
	if opts.Timeout != "" {
		t, err := time.ParseDuration(opts.Timeout)
		if err != nil || t <= 0 {
			errs = append(errs, fmt.Errorf("timeout %q: want a positive duration like \"200ms\"", opts.Timeout))
		}
		hops = append(hops, WithHookTimeout(t))
	}
	switch opts.Failure {
	case "", HookFailClosed.String():
		hops = append(hops, WithHookPolicy(HookFailClosed))
	case HookFailOpen.String():
		hops = append(hops, WithHookPolicy(HookFailOpen))
	default:
		errs = append(errs, fmt.Errorf("failure %q: want \"open\" or \"closed\"", opts.Failure))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("hook %q: %w: %w", opts.Name, ErrBadHook, err)
	}
	cc, err := grpcx.Dial(opts.Target)
	if err != nil {
		return nil, fmt.Errorf("hook %q: %w", opts.Name, err)
	}
	h, err := NewHook(opts.Name, hookv1.NewRouteHookServiceClient(cc), hops...)
	if err != nil {
		return nil, errors.Join(err, cc.Close())
	}
	h.conn = cc
	return h, nil
}
