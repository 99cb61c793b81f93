package protocol

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHandshakeState(t *testing.T) {
	t.Parallel()
	// The seed's handshake_state, case by case.
	tests := []struct {
		name string
		in   Handshake
		want HandshakeState
	}{
		{name: "success", in: Handshake{Title: "DIM!"}, want: HandshakeSuccess},
		{name: "success with session", in: Handshake{Title: "DIM!", Session: "k"}, want: HandshakeSuccess},
		{name: "again", in: Handshake{Title: "DIM?", Session: "new"}, want: HandshakeAgain},
		{name: "again without session", in: Handshake{Title: "DIM?"}, want: HandshakeAgain},
		{name: "start", in: Handshake{Title: "Hello world!"}, want: HandshakeStart},
		{name: "restart", in: Handshake{Title: "Hello world!", Session: "old"}, want: HandshakeRestart},
		{name: "other title is a hello", in: Handshake{Title: "hi", Session: "old"}, want: HandshakeRestart},
		{name: "empty title", in: Handshake{}, want: HandshakeStart},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, tt.in.State())
		})
	}
}

func TestHandshakeConstructors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		in    Handshake
		want  string
		state HandshakeState
	}{
		{name: "offer start", in: HandshakeOffer(""), want: `{"title":"Hello world!"}`, state: HandshakeStart},
		{name: "offer restart", in: HandshakeOffer("old"), want: `{"title":"Hello world!","session":"old"}`, state: HandshakeRestart},
		{name: "ask", in: HandshakeAsk("new"), want: `{"title":"DIM?","session":"new"}`, state: HandshakeAgain},
		{name: "accepted", in: HandshakeAccepted("k"), want: `{"title":"DIM!","session":"k"}`, state: HandshakeSuccess},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.state, tt.in.State())
			data := AppendHandshake(nil, tt.in)
			require.Equal(t, tt.want, string(data))
			back, err := ParseHandshake(data)
			require.NoError(t, err)
			require.Equal(t, tt.in, back)
		})
	}
	require.Equal(t, "start", HandshakeStart.String())
	require.Equal(t, "again", HandshakeAgain.String())
	require.Equal(t, "restart", HandshakeRestart.String())
	require.Equal(t, "success", HandshakeSuccess.String())
	require.Equal(t, "unknown", HandshakeState(9).String())
}

func TestParseHandshake(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want Handshake
		bad  bool
	}{
		{name: "hello", in: `{"title":"Hello world!","session":"abc"}`, want: Handshake{Title: "Hello world!", Session: "abc"}},
		{name: "dimp extras ignored", in: `{"type":136,"sn":12345,"command":"handshake","title":"Hello world!","message":"Hello world!"}`, want: Handshake{Title: "Hello world!"}},
		{name: "null session", in: `{"title":"Hello world!","session":null}`, want: Handshake{Title: "Hello world!"}},
		{name: "escaped", in: `{"t\u0069tle":"DIM\u0021"}`, want: Handshake{Title: "DIM!"}},
		{name: "not an object", in: `"Hello world!"`, bad: true},
		{name: "empty", in: ``, bad: true},
		{name: "no title", in: `{"session":"abc"}`, bad: true},
		{name: "empty title", in: `{"title":""}`, bad: true},
		{name: "numeric title", in: `{"title":1}`, bad: true},
		{name: "null title", in: `{"title":null}`, bad: true},
		{name: "numeric session", in: `{"title":"x","session":5}`, bad: true},
		{name: "duplicate title", in: `{"title":"Hello world!","title":"DIM!"}`, bad: true},
		{name: "duplicate session", in: `{"title":"x","session":"a","session":"b"}`, bad: true},
		{name: "Title is not title", in: `{"Title":"DIM!"}`, bad: true},
		{name: "lone surrogate", in: `{"title":"\ud800"}`, bad: true},
		{name: "broken", in: `{"title":"x"`, bad: true},
		{name: "invalid utf8", in: "{\"title\":\"\xff\"}", bad: true},
		{name: "too deep", in: `{"title":"x","x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseHandshake([]byte(tt.in))
			if tt.bad {
				requireCode(t, err, CodeInvalidHandshake)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestParseCustomizedContent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    CustomizedContent
		subject string
		bad     bool
	}{
		{
			name:    "seed example",
			in:      `{"type":204,"sn":12345,"app":"chat.dim.sechat","mod":"drift_bottle","act":"throw","extra":{ "text" : "hello" }}`,
			want:    CustomizedContent{App: "chat.dim.sechat", Mod: "drift_bottle", Act: "throw", Extra: json.RawMessage(`{"text":"hello"}`)},
			subject: "chat_dim_sechat.drift_bottle.throw",
		},
		{name: "no extra", in: `{"app":"a","mod":"m","act":"x"}`, want: CustomizedContent{App: "a", Mod: "m", Act: "x"}, subject: "a.m.x"},
		{name: "hyphens and digits", in: `{"app":"com.my-co.app2","mod":"m-1","act":"do_it-2"}`, want: CustomizedContent{App: "com.my-co.app2", Mod: "m-1", Act: "do_it-2"}, subject: "com_my-co_app2.m-1.do_it-2"},
		{name: "null extra kept", in: `{"app":"a","mod":"m","act":"x","extra":null}`, want: CustomizedContent{App: "a", Mod: "m", Act: "x", Extra: json.RawMessage(`null`)}, subject: "a.m.x"},
		{name: "missing app", in: `{"mod":"m","act":"x"}`, bad: true},
		{name: "missing mod", in: `{"app":"a","act":"x"}`, bad: true},
		{name: "missing act", in: `{"app":"a","mod":"m"}`, bad: true},
		{name: "empty act", in: `{"app":"a","mod":"m","act":""}`, bad: true},
		{name: "numeric app", in: `{"app":1,"mod":"m","act":"x"}`, bad: true},
		{name: "uppercase app", in: `{"app":"Chat","mod":"m","act":"x"}`, bad: true},
		{name: "underscore in app", in: `{"app":"my_app","mod":"m","act":"x"}`, bad: true},
		{name: "leading dot", in: `{"app":".a","mod":"m","act":"x"}`, bad: true},
		{name: "trailing dot", in: `{"app":"a.","mod":"m","act":"x"}`, bad: true},
		{name: "double dot", in: `{"app":"a..b","mod":"m","act":"x"}`, bad: true},
		{name: "dot in mod", in: `{"app":"a","mod":"m.n","act":"x"}`, bad: true},
		{name: "dot in act", in: `{"app":"a","mod":"m","act":"x.y"}`, bad: true},
		{name: "wildcard star", in: `{"app":"a","mod":"*","act":"x"}`, bad: true},
		{name: "wildcard gt", in: `{"app":"a","mod":"m","act":">"}`, bad: true},
		{name: "space", in: `{"app":"a b","mod":"m","act":"x"}`, bad: true},
		{name: "newline", in: `{"app":"a","mod":"m\n","act":"x"}`, bad: true},
		{name: "unicode", in: `{"app":"é","mod":"m","act":"x"}`, bad: true},
		{name: "app too long", in: `{"app":"` + strings.Repeat("a", MaxAppLength+1) + `","mod":"m","act":"x"}`, bad: true},
		{name: "mod too long", in: `{"app":"a","mod":"` + strings.Repeat("m", MaxModActLength+1) + `","act":"x"}`, bad: true},
		{name: "duplicate app", in: `{"app":"a","app":"b","mod":"m","act":"x"}`, bad: true},
		{name: "duplicate extra", in: `{"app":"a","mod":"m","act":"x","extra":1,"extra":2}`, bad: true},
		{name: "APP is not app", in: `{"APP":"a","mod":"m","act":"x"}`, bad: true},
		{name: "lone surrogate", in: `{"app":"a\udc00","mod":"m","act":"x"}`, bad: true},
		{name: "not an object", in: `[]`, bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseCustomizedContent([]byte(tt.in))
			if tt.bad {
				requireCode(t, err, CodeInvalidApp)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.subject, got.SubjectSuffix())
			require.Len(t, strings.Split(got.SubjectSuffix(), "."), 3, "always three subject tokens")
			back, err := ParseCustomizedContent(AppendCustomizedContent(nil, got))
			require.NoError(t, err)
			require.Equal(t, got, back)
		})
	}
}

func TestCustomizedContentValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, CustomizedContent{App: "a.b", Mod: "c", Act: "d"}.Validate())
	requireCode(t, CustomizedContent{App: "a", Mod: "", Act: "d"}.Validate(), CodeInvalidApp)
}
