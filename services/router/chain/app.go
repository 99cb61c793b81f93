package chain

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/bachata-chat/bachata/libs/natsx"
	"github.com/bachata-chat/bachata/libs/protocol"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
)

// DefaultAppTimeout bounds one request to an application backend when no
// WithAppTimeout is given. It stays well under the gateway's default
// rpc-timeout (10s), so a slow backend is answered 4111 rather than the
// gateway's own 5002.
const DefaultAppTimeout = 5 * time.Second

// AppMsgIDHeader is the NATS header carrying the message id on every request
// to an application backend, for logs and tracing tools; the JSON body is
// the contract.
const AppMsgIDHeader = "Bachata-Msg-Id"

// ErrBadApp means NewApp was given no Requester, or subjects whose prefix
// would not make literal NATS subjects.
var ErrBadApp = errors.New("chain: invalid app route configuration")

// Requester sends a NATS request and waits for its reply; *nats.Conn
// satisfies it. It must be safe for concurrent use.
type Requester interface {
	RequestMsgWithContext(ctx context.Context, msg *nats.Msg) (*nats.Msg, error)
}

// AppRequest is the JSON body of the NATS request an application backend
// receives, with the fields in this order and without insignificant
// whitespace:
//
//	{"id":"m-3","time":1700000000300,"from":"@alice@localhost","device":"phone",
//	 "app":"chat.dim.sechat","mod":"drift_bottle","act":"throw","extra":{"text":"…"}}
//
// JSON rather than a protobuf (the suite's rule for NATS payloads) because
// this is a public contract for backends written in any language, whose
// "extra" and reply are JSON anyway. Backends must ignore fields they do not
// know: later versions may add some.
type AppRequest struct {
	// ID is the message id, unique per sender (not across senders).
	ID string `json:"id"`
	// Time is when the router accepted the message, Unix milliseconds.
	Time int64 `json:"time"`
	// From is the authenticated sender's entity ID, never what the client
	// claimed.
	From string `json:"from"`
	// Device is the sending device of From.
	Device string `json:"device"`
	// Dest is the message's dest as the client sent it, when it sent one:
	// an entity ID or a bare username, checked for form only.
	Dest string `json:"dest,omitempty"`
	// App, Mod and Act are the customized content's names as sent (App with
	// its dots, not the subject token).
	App string `json:"app"`
	Mod string `json:"mod"`
	Act string `json:"act"`
	// Extra is the content's "extra" exactly as sent (compact JSON, nothing
	// re-escaped); absent when the client sent none.
	Extra json.RawMessage `json:"extra,omitempty"`
}

// App forwards "app" messages, DIMP customized content
// {"app","mod","act","extra"}, to the application backend for that
// app/mod/act as a NATS request on natsx.Subjects.App of the content's
// SubjectSuffix, for example "bachata.app.chat_dim_sechat.drift_bottle.throw".
// The request body is an AppRequest; the backend's reply body, which must
// be one JSON value, comes back to the sending connection as an "app" data
// message with the request's id, the router's time, dest the sender and
// the reply as data (OUTCOME_REPLIED); nothing is queued, so the reply is
// lost if the sender disconnects first.
//
// Rejections, all to the sender only:
//
//   - a system message (no sending device): 4103 forbidden, so a backend
//     can always rely on from and device;
//   - data that is not valid customized content: 4112 invalid app;
//   - no backend subscribed: 4110 (nothing was processed; retry later);
//   - no reply within the timeout: 4111 (the backend may have acted);
//   - a reply that is not one JSON value in valid UTF-8, nests deeper or
//     makes a bigger frame than a client's decoder accepts (32 levels,
//     64 KiB by default): 5000 internal, since the backend is broken and
//     may have acted; it is logged as a warning.
//
// A request the router could not make (the NATS connection is closed or
// reconnecting with a full buffer) is an error wrapping ErrUnavailable; one
// whose caller gave up is an error wrapping the context's.
//
// The names are checked twice: by protocol.ParseCustomizedContent, and
// again on the subject, whose part after "<prefix>.app." must be exactly
// three tokens of a-z 0-9 '_' '-' (NewApp checks that the prefix has no
// empty token, space, '*' or '>'), so no client can make the router
// publish to a wildcard or to another service's subject.
//
// An App is safe for concurrent use; it holds no state but its settings.
type App struct {
	nc       Requester
	subjects natsx.Subjects
	timeout  time.Duration
	maxFrame int
	logger   *slog.Logger
}

// AppOption configures NewApp.
type AppOption func(*App)

// WithAppTimeout bounds each request to a backend (default
// DefaultAppTimeout; zero or less means the default). Keep it below the
// gateway's rpc-timeout.
func WithAppTimeout(d time.Duration) AppOption {
	return func(a *App) {
		if d > 0 {
			a.timeout = d
		}
	}
}

// WithAppMaxFrame caps the reply frame the sender receives, in bytes
// (default protocol.DefaultMaxFrameSize, what a client's decoder accepts by
// default; zero or less means the default).
func WithAppMaxFrame(n int) AppOption {
	return func(a *App) {
		if n > 0 {
			a.maxFrame = n
		}
	}
}

// WithAppLogger logs broken backend replies (default: discarded).
func WithAppLogger(l *slog.Logger) AppOption {
	return func(a *App) {
		if l != nil {
			a.logger = l
		}
	}
}

// NewApp returns the app route sending requests through nc (a *nats.Conn)
// on subjects built by subjects. It fails with ErrBadApp when nc is nil or
// the prefix would not make a literal subject.
func NewApp(nc Requester, subjects natsx.Subjects, opts ...AppOption) (*App, error) {
	if nc == nil {
		return nil, fmt.Errorf("new app route: %w: no requester", ErrBadApp)
	}
	a := &App{
		nc:       nc,
		subjects: subjects,
		timeout:  DefaultAppTimeout,
		maxFrame: protocol.DefaultMaxFrameSize,
		logger:   slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(a)
	}
	if probe := subjects.App("a.m.a"); checkAppPrefix(probe) != "" {
		return nil, fmt.Errorf("new app route: %w: prefix %q: subject %q has %s", ErrBadApp, subjects.Prefix, probe, checkAppPrefix(probe))
	}
	return a, nil
}

// Name implements Route.
func (*App) Name() string { return protocol.TypeApp }

// Timeout is the bound on each backend request.
func (a *App) Timeout() time.Duration { return a.timeout }

// Process implements Route.
func (a *App) Process(ctx context.Context, req *Request) (Decision, error) {
	m := req.Message
	if m.GetType() != protocol.TypeApp {
		return Pass(), nil
	}
	if req.System() {
		return Reject(protocol.Errorf(protocol.CodeForbidden, "an app message needs a sending device")), nil
	}
	content, err := protocol.ParseCustomizedContent(m.GetData())
	if err != nil {
		return Reject(protocol.AsError(err)), nil
	}
	suffix := content.SubjectSuffix()
	if problem := checkAppSuffix(suffix); problem != "" {
		// Unreachable while the parser holds; kept so that a change there
		// can never turn client input into a wildcard publish or a subject
		// of another shape. The prefix was checked by NewApp.
		return Reject(protocol.Errorf(protocol.CodeInvalidApp, "%s", problem)), nil
	}
	subject := a.subjects.App(suffix)
	body, err := encodeAppRequest(req, content)
	if err != nil {
		return Decision{}, fmt.Errorf("app %s: %w", subject, err)
	}
	msg := nats.NewMsg(subject)
	msg.Header.Set(AppMsgIDHeader, m.GetId())
	msg.Data = body
	// The backend may continue the message's trace from the W3C
	// traceparent header (present when tracing is on).
	natsx.InjectTrace(ctx, msg)

	rctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	resp, err := a.nc.RequestMsgWithContext(rctx, msg)
	switch {
	case err == nil:
	case errors.Is(err, nats.ErrNoResponders):
		return Reject(protocol.Errorf(protocol.CodeAppNoResponder, "%s/%s/%s", content.App, content.Mod, content.Act)), nil
	case ctx.Err() != nil:
		// The caller gave up (its deadline or a closing connection): nobody
		// reads an answer now.
		return Decision{}, fmt.Errorf("app %s: %w", subject, ctx.Err())
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return Reject(protocol.Errorf(protocol.CodeAppTimeout, "no answer within %s", a.timeout)), nil
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionDraining),
		errors.Is(err, nats.ErrDisconnected), errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrReconnectBufExceeded):
		return Decision{}, fmt.Errorf("app %s: %w: %w", subject, ErrUnavailable, err)
	default:
		return Decision{}, fmt.Errorf("app %s: %w", subject, err)
	}

	reply := &commonv1.Message{
		Id:     m.GetId(),
		Type:   protocol.TypeApp,
		TimeMs: m.GetTimeMs(),
		Dest:   req.Sender.GetUser(),
	}
	data, problem := a.checkReply(reply, resp.Data)
	if problem != "" {
		a.logger.WarnContext(ctx, "app backend reply rejected",
			"subject", subject, "id", m.GetId(), "from", m.GetFrom(), "bytes", len(resp.Data), "problem", problem)
		return Reject(protocol.Errorf(protocol.CodeInternal, "the application backend answered badly")), nil
	}
	reply.Data = data
	return Reply(reply), nil
}

// encodeAppRequest builds the AppRequest body without HTML escaping, so
// extra reaches the backend exactly as the client sent it.
func encodeAppRequest(req *Request, c protocol.CustomizedContent) ([]byte, error) {
	m := req.Message
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(AppRequest{
		ID:     m.GetId(),
		Time:   m.GetTimeMs(),
		From:   req.Sender.GetUser(),
		Device: req.Sender.GetDevice(),
		Dest:   m.GetDest(),
		App:    c.App,
		Mod:    c.Mod,
		Act:    c.Act,
		Extra:  c.Extra,
	})
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// checkReply returns the backend's reply as compact JSON data for reply, or
// what is wrong with it. The frame the sender will receive is run through
// the client decoder, so the sender gets nothing its own decoder refuses.
func (a *App) checkReply(reply *commonv1.Message, data []byte) ([]byte, string) {
	// Valid first: AppendData copies data verbatim, and bytes such as
	// `1,"sign":"x"` would otherwise decode as a different frame.
	if !json.Valid(data) {
		return nil, "not one JSON value"
	}
	frame := protocol.AppendData(nil, &protocol.DataMessage{
		ID: reply.GetId(), Type: reply.GetType(), Time: reply.GetTimeMs(), Dest: reply.GetDest(), Data: data,
	})
	f, err := protocol.Decoder{MaxFrameSize: a.maxFrame}.Decode(frame)
	if err != nil {
		return nil, err.Error()
	}
	dm, ok := f.(*protocol.DataMessage)
	if !ok {
		return nil, "not a data message"
	}
	return dm.Data, ""
}

// checkAppPrefix returns what makes subject, a probe built by the
// configured natsx.Subjects, unfit as the start of app subjects, or "":
// every token must be non-empty printable ASCII without spaces or
// wildcards.
func checkAppPrefix(subject string) string {
	for t := range strings.SplitSeq(subject, ".") {
		if t == "" {
			return "an empty token"
		}
		for i := 0; i < len(t); i++ {
			if c := t[i]; c <= ' ' || c >= 0x7f || c == '*' || c == '>' {
				return "a space, wildcard or non-ASCII byte"
			}
		}
	}
	return ""
}

// checkAppSuffix returns what makes suffix unfit as the end of an app
// subject, or "": exactly three tokens, each one or more of a-z 0-9 '_' '-'.
func checkAppSuffix(suffix string) string {
	tokens := 0
	for t := range strings.SplitSeq(suffix, ".") {
		tokens++
		if t == "" {
			return "subject has an empty token"
		}
		for i := 0; i < len(t); i++ {
			if !appSubjectByte(t[i]) {
				return "app, mod or act holds a byte other than a-z 0-9 '_' '-'"
			}
		}
	}
	if tokens != 3 {
		return "subject does not end in <app>.<mod>.<act>"
	}
	return ""
}

// appSubjectByte reports whether c may appear in the subject token of an
// app, mod or act.
func appSubjectByte(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}
