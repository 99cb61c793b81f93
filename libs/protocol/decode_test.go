package protocol

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDecodeData(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want *DataMessage
	}{
		{
			name: "direct",
			in:   `{"id":"9f1c","type":"direct","dest":"@bob@localhost","data":{"text":"hi"}}`,
			want: &DataMessage{ID: "9f1c", Type: "direct", Dest: "@bob@localhost", Data: json.RawMessage(`{"text":"hi"}`)},
		},
		{
			name: "all fields",
			in:   `{"id":"1","type":"group","time":1700000000123,"from":"@alice@localhost","dest":"!room@localhost","data":"text","sign":"ab"}`,
			want: &DataMessage{ID: "1", Type: "group", Time: 1700000000123, From: "@alice@localhost", Dest: "!room@localhost", Data: json.RawMessage(`"text"`), Sign: "ab"},
		},
		{
			name: "bare dest",
			in:   `{"id":"1","type":"direct","dest":"bob"}`,
			want: &DataMessage{ID: "1", Type: "direct", Dest: "bob"},
		},
		{
			name: "empty dest allowed",
			in:   `{"id":"1","type":"custom","dest":""}`,
			want: &DataMessage{ID: "1", Type: "custom"},
		},
		{
			name: "field order free",
			in:   `{"data":[1,2],"dest":"bob","type":"direct","id":"x"}`,
			want: &DataMessage{ID: "x", Type: "direct", Dest: "bob", Data: json.RawMessage(`[1,2]`)},
		},
		{
			name: "whitespace everywhere",
			in:   " \t\r\n{ \"id\" : \"x\" ,\n\"type\":\t\"direct\" , \"data\" : { \"a\" : [ 1 , 2 ] , \"b\" : \"s p a c e\" } }\n ",
			want: &DataMessage{ID: "x", Type: "direct", Data: json.RawMessage(`{"a":[1,2],"b":"s p a c e"}`)},
		},
		{
			name: "data kept as sent: escapes and key order",
			in:   `{"id":"x","type":"t","data":{"z":1,"a":"caf\u00e9 \/ \"q\"","n":1.50e+3,"u":"\ud83d\udc4b"}}`,
			want: &DataMessage{ID: "x", Type: "t", Data: json.RawMessage(`{"z":1,"a":"caf\u00e9 \/ \"q\"","n":1.50e+3,"u":"\ud83d\udc4b"}`)},
		},
		{
			name: "data null kept",
			in:   `{"id":"x","type":"t","data":null}`,
			want: &DataMessage{ID: "x", Type: "t", Data: json.RawMessage(`null`)},
		},
		{
			name: "escaped strings unescaped",
			in:   `{"id":"a\"b\\c\/\u00e9\ud83d\ude00","type":"dir\u0065ct","from":"\u0040x\n"}`,
			want: &DataMessage{ID: "a\"b\\c/é😀", Type: "direct", From: "@x\n"},
		},
		{
			name: "escaped key matches",
			in:   `{"\u0069d":"x","typ\u0065":"direct"}`,
			want: &DataMessage{ID: "x", Type: "direct"},
		},
		{
			name: "null optionals mean absent",
			in:   `{"id":"x","type":"t","time":null,"from":null,"dest":null,"sign":null}`,
			want: &DataMessage{ID: "x", Type: "t"},
		},
		{
			name: "negative time",
			in:   `{"id":"x","type":"t","time":-5}`,
			want: &DataMessage{ID: "x", Type: "t", Time: -5},
		},
		{
			name: "unknown fields dropped",
			in:   `{"id":"x","type":"direct","to":"@eve@localhost","route":"evil","From":"@eve@x","ok":true,"payload":{"a":1}}`,
			want: &DataMessage{ID: "x", Type: "direct"},
		},
		{
			name: "id of max length",
			in:   `{"id":"` + strings.Repeat("i", MaxIDLength) + `","type":"t"}`,
			want: &DataMessage{ID: strings.Repeat("i", MaxIDLength), Type: "t"},
		},
		{
			name: "type with colon and unicode",
			in:   `{"id":"x","type":"weird:type ✓"}`,
			want: &DataMessage{ID: "x", Type: "weird:type ✓"},
		},
		{
			name: "unicode in strings",
			in:   `{"id":"ид","type":"t","data":{"text":"привет 👋"}}`,
			want: &DataMessage{ID: "ид", Type: "t", Data: json.RawMessage(`{"text":"привет 👋"}`)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := Decode([]byte(tt.in))
			require.NoError(t, err)
			require.Equal(t, tt.want, f)
			require.NoError(t, CheckClientFrame(f))
		})
	}
}

func TestDecodeTransport(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		in         string
		want       *TransportMessage
		fromClient bool
	}{
		{name: "received", in: `{"type":100,"data":"m1"}`, want: &TransportMessage{Type: TransportReceived, Data: "m1"}},
		{name: "ack", in: `{"type":200,"data":"m1"}`, want: &TransportMessage{Type: TransportAck, Data: "m1"}, fromClient: true},
		{name: "delivered", in: `{"type":300,"data":"m1"}`, want: &TransportMessage{Type: TransportDelivered, Data: "m1"}},
		{name: "ready", in: `{"type":1000,"data":"session-key"}`, want: &TransportMessage{Type: TransportReady, Data: "session-key"}},
		{name: "ping", in: `{"type":1001}`, want: &TransportMessage{Type: TransportPing}, fromClient: true},
		{name: "pong", in: `{"type":1002}`, want: &TransportMessage{Type: TransportPong}, fromClient: true},
		{name: "ping null data", in: `{"type":1001,"data":null}`, want: &TransportMessage{Type: TransportPing}, fromClient: true},
		{name: "signed ack", in: `{"type":200,"data":"m1","sign":"00ff"}`, want: &TransportMessage{Type: TransportAck, Data: "m1", Sign: "00ff"}, fromClient: true},
		{name: "data-message fields dropped", in: `{"type":200,"data":"m1","id":5,"time":"x","from":[],"dest":{}}`, want: &TransportMessage{Type: TransportAck, Data: "m1"}, fromClient: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := Decode([]byte(tt.in))
			require.NoError(t, err)
			require.Equal(t, tt.want, f)
			err = CheckClientFrame(f)
			if tt.fromClient {
				require.NoError(t, err)
				return
			}
			requireCode(t, err, CodeTypeNotAllowed)
			require.Equal(t, `{"type":"error","data":{"errCode":4003,"errText":"transport type is unknown or not allowed from a client: transport type `+
				strconv.Itoa(int(tt.want.Type))+` is sent by the server only","errPayload":{}}}`, string(AppendError(nil, AsError(err))))
		})
	}
}

// requireCode asserts that err is an *Error with the code.
func requireCode(t *testing.T, err error, code Code) {
	t.Helper()
	require.Error(t, err)
	var pe *Error
	require.ErrorAs(t, err, &pe)
	require.Equal(t, code, pe.Code, "error: %v", err)
	require.ErrorIs(t, err, &Error{Code: code})
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	tests := []struct {
		name   string
		in     string
		code   Code
		wantID string // echoed id
		wantTy string // echoed type
	}{
		// 4000
		{name: "empty", in: ``, code: CodeInvalidJSON},
		{name: "spaces only", in: "  \n", code: CodeInvalidJSON},
		{name: "not json", in: `hello`, code: CodeInvalidJSON},
		{name: "truncated", in: `{"id":"x","type":"direct"`, code: CodeInvalidJSON, wantID: "x", wantTy: "direct"},
		{name: "truncated string", in: `{"id":"x`, code: CodeInvalidJSON},
		{name: "trailing comma", in: `{"id":"x","type":"t",}`, code: CodeInvalidJSON, wantID: "x", wantTy: "t"},
		{name: "trailing data", in: `{"type":1001} {}`, code: CodeInvalidJSON},
		{name: "trailing data after array", in: `[1] x`, code: CodeInvalidJSON},
		{name: "single quotes", in: `{'id':'x'}`, code: CodeInvalidJSON},
		{name: "unquoted key", in: `{id:"x"}`, code: CodeInvalidJSON},
		{name: "missing colon", in: `{"id" "x"}`, code: CodeInvalidJSON},
		{name: "missing comma", in: `{"id":"x" "type":"t"}`, code: CodeInvalidJSON, wantID: "x"},
		{name: "raw newline in string", in: "{\"id\":\"a\nb\",\"type\":\"t\"}", code: CodeInvalidJSON},
		{name: "bad escape", in: `{"id":"\x","type":"t"}`, code: CodeInvalidJSON},
		{name: "short unicode escape", in: `{"id":"\u12","type":"t"}`, code: CodeInvalidJSON},
		{name: "leading zero number", in: `{"id":"x","type":"t","time":01}`, code: CodeInvalidJSON, wantID: "x", wantTy: "t"},
		{name: "plus number", in: `{"type":+100}`, code: CodeInvalidJSON},
		{name: "bare dot number", in: `{"type":1.}`, code: CodeInvalidJSON},
		{name: "bad exponent", in: `{"type":1e}`, code: CodeInvalidJSON},
		{name: "NaN", in: `{"type":NaN}`, code: CodeInvalidJSON},
		{name: "bad literal", in: `{"id":"x","type":"t","data":tru}`, code: CodeInvalidJSON, wantID: "x", wantTy: "t"},
		{name: "unclosed data object", in: `{"id":"x","type":"t","data":{"a":1}`, code: CodeInvalidJSON, wantID: "x", wantTy: "t"},
		{name: "mismatched brackets", in: `{"id":"x","type":"t","data":[1}}`, code: CodeInvalidJSON, wantID: "x", wantTy: "t"},
		{name: "BOM", in: "\ufeff{\"type\":1001}", code: CodeInvalidJSON},
		// 4001
		{name: "array", in: `[{"type":1001}]`, code: CodeNotObject},
		{name: "string", in: `"direct"`, code: CodeNotObject},
		{name: "number", in: `1001`, code: CodeNotObject},
		{name: "null", in: ` null `, code: CodeNotObject},
		// 4002
		{name: "no type", in: `{"id":"x"}`, code: CodeInvalidType, wantID: "x"},
		{name: "empty object", in: `{}`, code: CodeInvalidType},
		{name: "null type", in: `{"id":"x","type":null}`, code: CodeInvalidType, wantID: "x"},
		{name: "empty type", in: `{"id":"x","type":""}`, code: CodeInvalidType, wantID: "x"},
		{name: "type too long", in: `{"id":"x","type":"` + strings.Repeat("t", MaxTypeLength+1) + `"}`, code: CodeInvalidType, wantID: "x"},
		{name: "float type", in: `{"type":100.5,"data":"x"}`, code: CodeInvalidType},
		{name: "float integral type", in: `{"type":100.0,"data":"x"}`, code: CodeInvalidType},
		{name: "exponent type", in: `{"type":1e2,"data":"x"}`, code: CodeInvalidType},
		{name: "bool type", in: `{"type":true}`, code: CodeInvalidType},
		{name: "object type", in: `{"id":"x","type":{"a":1}}`, code: CodeInvalidType, wantID: "x"},
		{name: "uppercase TYPE only", in: `{"id":"x","TYPE":"direct"}`, code: CodeInvalidType, wantID: "x"},
		{name: "type with newline", in: `{"id":"x","type":"a\nb"}`, code: CodeInvalidType, wantID: "x"},
		{name: "type with tab", in: `{"id":"x","type":"a\tb"}`, code: CodeInvalidType, wantID: "x"},
		// 4003
		{name: "unknown transport", in: `{"type":400,"data":"x"}`, code: CodeTypeNotAllowed},
		{name: "zero transport", in: `{"type":0}`, code: CodeTypeNotAllowed},
		{name: "negative transport", in: `{"type":-100}`, code: CodeTypeNotAllowed},
		{name: "minus zero transport", in: `{"type":-0}`, code: CodeTypeNotAllowed},
		{name: "huge transport", in: `{"type":100000000000000000000000}`, code: CodeTypeNotAllowed},
		// 4004
		{name: "no id", in: `{"type":"direct","dest":"bob"}`, code: CodeMissingID, wantTy: "direct"},
		{name: "null id", in: `{"id":null,"type":"direct"}`, code: CodeMissingID, wantTy: "direct"},
		{name: "empty id", in: `{"id":"","type":"direct"}`, code: CodeMissingID, wantTy: "direct"},
		{name: "uppercase ID only", in: `{"ID":"x","type":"direct"}`, code: CodeMissingID, wantTy: "direct"},
		{name: "ack without data", in: `{"type":200}`, code: CodeMissingID},
		{name: "ack with empty data", in: `{"type":200,"data":""}`, code: CodeMissingID},
		{name: "received without data", in: `{"type":100}`, code: CodeMissingID},
		{name: "delivered with null data", in: `{"type":300,"data":null}`, code: CodeMissingID},
		// 4005
		{name: "numeric id", in: `{"id":123,"type":"direct"}`, code: CodeInvalidID, wantTy: "direct"},
		{name: "object id", in: `{"id":{},"type":"direct"}`, code: CodeInvalidID, wantTy: "direct"},
		{name: "id too long", in: `{"id":"` + strings.Repeat("i", MaxIDLength+1) + `","type":"direct"}`, code: CodeInvalidID, wantTy: "direct"},
		{name: "id too long after unescape", in: `{"id":"` + strings.Repeat(`\u00e9`, 65) + `","type":"direct"}`, code: CodeInvalidID, wantTy: "direct"},
		{name: "id with newline", in: `{"id":"a\nb","type":"direct"}`, code: CodeInvalidID, wantTy: "direct"},
		{name: "id with NUL", in: `{"id":"a\u0000","type":"direct"}`, code: CodeInvalidID, wantTy: "direct"},
		{name: "id with DEL", in: "{\"id\":\"a\x7f\",\"type\":\"direct\"}", code: CodeInvalidID, wantTy: "direct"},
		{name: "ack id with newline", in: `{"type":200,"data":"a\nb"}`, code: CodeInvalidID},
		{name: "ack id too long", in: `{"type":200,"data":"` + strings.Repeat("i", MaxIDLength+1) + `"}`, code: CodeInvalidID},
		// 4006
		{name: "dest uppercase", in: `{"id":"x","type":"direct","dest":"Bob"}`, code: CodeInvalidDest, wantID: "x", wantTy: "direct"},
		{name: "dest bad port", in: `{"id":"x","type":"direct","dest":"@bob@localhost:0"}`, code: CodeInvalidDest, wantID: "x", wantTy: "direct"},
		{name: "dest no server", in: `{"id":"x","type":"direct","dest":"@bob"}`, code: CodeInvalidDest, wantID: "x", wantTy: "direct"},
		{name: "dest unknown sigil", in: `{"id":"x","type":"direct","dest":"$bob@x"}`, code: CodeInvalidDest, wantID: "x", wantTy: "direct"},
		{name: "dest with space", in: `{"id":"x","type":"direct","dest":" bob"}`, code: CodeInvalidDest, wantID: "x", wantTy: "direct"},
		// 4007
		{name: "float time", in: `{"id":"x","type":"t","time":1.5}`, code: CodeInvalidField, wantID: "x", wantTy: "t"},
		{name: "string time", in: `{"id":"x","type":"t","time":"1"}`, code: CodeInvalidField, wantID: "x", wantTy: "t"},
		{name: "overflowing time", in: `{"id":"x","type":"t","time":9223372036854775808}`, code: CodeInvalidField, wantID: "x", wantTy: "t"},
		{name: "numeric from", in: `{"id":"x","type":"t","from":1}`, code: CodeInvalidField, wantID: "x", wantTy: "t"},
		{name: "object dest", in: `{"id":"x","type":"t","dest":{"user":"bob"}}`, code: CodeInvalidField, wantID: "x", wantTy: "t"},
		{name: "array sign", in: `{"id":"x","type":"t","sign":["a"]}`, code: CodeInvalidField, wantID: "x", wantTy: "t"},
		{name: "bool sign", in: `{"id":"x","type":"t","sign":false}`, code: CodeInvalidField, wantID: "x", wantTy: "t"},
		{name: "transport numeric data", in: `{"type":200,"data":5}`, code: CodeInvalidField},
		{name: "transport object data", in: `{"type":1001,"data":{}}`, code: CodeInvalidField},
		{name: "transport numeric sign", in: `{"type":1001,"sign":5}`, code: CodeInvalidField},
		{name: "bad field before bad dest", in: `{"id":"x","type":"t","dest":"B","from":1}`, code: CodeInvalidField, wantID: "x", wantTy: "t"},
		// 4008
		{name: "duplicate id", in: `{"id":"a","type":"direct","id":"b"}`, code: CodeDuplicateKey, wantID: "a", wantTy: "direct"},
		{name: "duplicate type", in: `{"type":"direct","id":"a","type":1001}`, code: CodeDuplicateKey, wantID: "a", wantTy: "direct"},
		{name: "duplicate dest", in: `{"id":"a","type":"direct","dest":"bob","dest":"eve"}`, code: CodeDuplicateKey, wantID: "a", wantTy: "direct"},
		{name: "duplicate via escape", in: `{"id":"a","type":"direct","\u0064est":"bob","dest":"eve"}`, code: CodeDuplicateKey, wantID: "a", wantTy: "direct"},
		{name: "duplicate unknown", in: `{"id":"a","type":"direct","x":1,"x":2}`, code: CodeDuplicateKey, wantID: "a", wantTy: "direct"},
		{name: "duplicate transport data", in: `{"type":200,"data":"a","data":"b"}`, code: CodeDuplicateKey},
		{name: "duplicate beats bad type", in: `{"type":true,"x":1,"x":1}`, code: CodeDuplicateKey},
		// 4010
		{name: "invalid utf8 in string", in: "{\"id\":\"\xff\",\"type\":\"t\"}", code: CodeInvalidUTF8},
		{name: "invalid utf8 outside string", in: "{\"type\":1001}\xc3", code: CodeInvalidUTF8},
		{name: "overlong encoding", in: "{\"id\":\"\xc0\xaf\",\"type\":\"t\"}", code: CodeInvalidUTF8},
		{name: "encoded surrogate", in: "{\"id\":\"\xed\xa0\x80\",\"type\":\"t\"}", code: CodeInvalidUTF8},
		{name: "lone surrogate escape in id", in: `{"id":"\ud800","type":"t"}`, code: CodeInvalidUTF8, wantTy: "t"},
		{name: "lone low surrogate in dest", in: `{"id":"x","type":"t","dest":"\udc00"}`, code: CodeInvalidUTF8, wantID: "x", wantTy: "t"},
		{name: "lone surrogate in type", in: `{"id":"x","type":"a\ud800b"}`, code: CodeInvalidUTF8, wantID: "x"},
		// 4011
		{name: "deep data", in: `{"id":"x","type":"t","data":` + deep(DefaultMaxDepth) + `}`, code: CodeTooDeep, wantID: "x", wantTy: "t"},
		{name: "deep top-level array", in: deep(DefaultMaxDepth + 1), code: CodeTooDeep},
		{name: "very deep unclosed", in: strings.Repeat("[", 60000), code: CodeTooDeep},
		{name: "very deep objects", in: strings.Repeat(`{"a":`, 10000), code: CodeTooDeep},
		// 4012
		{name: "too large", in: `{"id":"x","type":"t","data":"` + strings.Repeat("a", DefaultMaxFrameSize) + `"}`, code: CodeFrameTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := Decode([]byte(tt.in))
			require.Nil(t, f)
			requireCode(t, err, tt.code)
			pe := AsError(err)
			require.Equal(t, tt.wantID, pe.ID, "echoed id")
			require.Equal(t, tt.wantTy, pe.Type, "echoed type")
			require.True(t, strings.HasPrefix(pe.ErrText(), tt.code.Text()), pe.ErrText())
			// The reply is always valid JSON, whatever came in.
			reply := AppendError(nil, pe)
			require.True(t, json.Valid(reply), string(reply))
		})
	}
}

func TestDecodeDepthBoundary(t *testing.T) {
	t.Parallel()
	nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	tests := []struct {
		name     string
		maxDepth int
		inner    int // containers inside "data"; the frame object is depth 1
		ok       bool
	}{
		{name: "default at limit", maxDepth: 0, inner: DefaultMaxDepth - 1, ok: true},
		{name: "default over limit", maxDepth: 0, inner: DefaultMaxDepth, ok: false},
		{name: "custom at limit", maxDepth: 3, inner: 2, ok: true},
		{name: "custom over limit", maxDepth: 3, inner: 3, ok: false},
		{name: "depth 1 allows scalars", maxDepth: 1, inner: 0, ok: true},
		{name: "depth 1 rejects containers", maxDepth: 1, inner: 1, ok: false},
		{name: "clamped to MaxDepthLimit", maxDepth: 1 << 20, inner: MaxDepthLimit - 1, ok: true},
		{name: "over MaxDepthLimit", maxDepth: 1 << 20, inner: MaxDepthLimit, ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := nest(tt.inner)
			if tt.inner == 0 {
				data = "1"
			}
			in := `{"id":"x","type":"t","data":` + data + `}`
			f, err := Decoder{MaxDepth: tt.maxDepth, MaxFrameSize: 1 << 20}.Decode([]byte(in))
			if tt.ok {
				require.NoError(t, err)
				require.Equal(t, data, string(f.(*DataMessage).Data))
				return
			}
			requireCode(t, err, CodeTooDeep)
		})
	}
}

func TestDecoderMaxFrameSize(t *testing.T) {
	t.Parallel()
	frame := []byte(`{"type":1001}`)
	_, err := Decoder{MaxFrameSize: len(frame)}.Decode(frame)
	require.NoError(t, err)
	_, err = Decoder{MaxFrameSize: len(frame) - 1}.Decode(frame)
	requireCode(t, err, CodeFrameTooLarge)
	big := []byte(`{"id":"x","type":"t","data":"` + strings.Repeat("a", DefaultMaxFrameSize-31) + `"}`)
	require.Equal(t, DefaultMaxFrameSize, len(big))
	_, err = Decode(big)
	require.NoError(t, err)
}

// TestDecodeUnknownFieldsDoNotSurvive proves that fields outside the frame
// schema never reach routing or recipients: decode then encode drops them.
func TestDecodeUnknownFieldsDoNotSurvive(t *testing.T) {
	t.Parallel()
	in := `{"to":"@eve@localhost","route":"admin","From":"@root@localhost","FROM":"@root@localhost",` +
		`"Dest":"@eve@localhost","TIME":1,"Data":{"x":1},"id":"m1","type":"direct","dest":"@bob@localhost",` +
		`"data":{"text":"hi","to":"inside data is kept"},"ok":true,"payload":{},"__proto__":{}}`
	f, err := Decode([]byte(in))
	require.NoError(t, err)
	m := f.(*DataMessage)
	require.Empty(t, m.From, "a differently cased From must not become from")
	require.Zero(t, m.Time)
	out := AppendData(nil, m)
	require.Equal(t, `{"id":"m1","type":"direct","dest":"@bob@localhost","data":{"text":"hi","to":"inside data is kept"}}`, string(out))
	var keys map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(out, &keys))
	require.Len(t, keys, 4)
	for _, k := range []string{"to", "route", "From", "FROM", "Dest", "TIME", "Data", "ok", "payload", "__proto__"} {
		require.NotContains(t, keys, k)
	}
}

func TestDecodeDoesNotAliasInput(t *testing.T) {
	t.Parallel()
	frame := []byte(`{"id":"m1","type":"custom","dest":"bob","data":{"text":"hi"},"sign":"ab","from":"x"}`)
	f, err := Decode(frame)
	require.NoError(t, err)
	for i := range frame {
		frame[i] = 'X'
	}
	require.Equal(t, &DataMessage{ID: "m1", Type: "custom", Dest: "bob", From: "x", Sign: "ab", Data: json.RawMessage(`{"text":"hi"}`)}, f)
}

func TestDecodeManyKeys(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(`{"id":"x","type":"t"`)
	for i := range 5000 {
		b.WriteString(`,"k` + strconv.Itoa(i) + `":0`)
	}
	distinct := b.String() + "}"
	f, err := Decode([]byte(distinct))
	require.NoError(t, err)
	require.Equal(t, &DataMessage{ID: "x", Type: "t"}, f)

	_, err = Decode([]byte(b.String() + `,"k4321":1}`))
	requireCode(t, err, CodeDuplicateKey)
	pe := AsError(err)
	require.Contains(t, pe.ErrText(), `"k4321"`)
}

func TestDecodeAllowMissingID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want *DataMessage
		code Code
	}{
		{name: "presence event", in: `{"type":"presence","data":{"user":"@bob@localhost","status":"online","lastSeen":1}}`,
			want: &DataMessage{Type: "presence", Data: json.RawMessage(`{"user":"@bob@localhost","status":"online","lastSeen":1}`)}},
		{name: "error reply", in: `{"type":"error","data":{"errCode":4000}}`, want: &DataMessage{Type: "error", Data: json.RawMessage(`{"errCode":4000}`)}},
		{name: "empty id", in: `{"id":"","type":"t"}`, want: &DataMessage{Type: "t"}},
		{name: "null id", in: `{"id":null,"type":"t"}`, want: &DataMessage{Type: "t"}},
		{name: "numeric id still rejected", in: `{"id":1,"type":"t"}`, code: CodeInvalidID},
		{name: "long id still rejected", in: `{"id":"` + strings.Repeat("i", MaxIDLength+1) + `","type":"t"}`, code: CodeInvalidID},
		{name: "ack without id still rejected", in: `{"type":200}`, code: CodeMissingID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := Decoder{AllowMissingID: true}.Decode([]byte(tt.in))
			if tt.want == nil {
				requireCode(t, err, tt.code)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, f)
			_, err = Decode([]byte(tt.in))
			requireCode(t, err, CodeMissingID)
		})
	}
}
