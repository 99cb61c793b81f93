package protocol

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAppendData(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   *DataMessage
		want string
	}{
		{
			name: "field order",
			in:   &DataMessage{Sign: "ff", Data: json.RawMessage(`{"text":"hi"}`), Dest: "@bob@localhost", From: "@alice@localhost", Time: 1700000000123, Type: "direct", ID: "m1"},
			want: `{"id":"m1","type":"direct","time":1700000000123,"from":"@alice@localhost","dest":"@bob@localhost","data":{"text":"hi"},"sign":"ff"}`,
		},
		{
			name: "optional fields left out",
			in:   &DataMessage{ID: "m1", Type: "typing"},
			want: `{"id":"m1","type":"typing"}`,
		},
		{
			name: "required fields always written",
			in:   &DataMessage{},
			want: `{"id":"","type":""}`,
		},
		{
			name: "negative time",
			in:   &DataMessage{ID: "m", Type: "t", Time: -1},
			want: `{"id":"m","type":"t","time":-1}`,
		},
		{
			name: "escaping",
			in:   &DataMessage{ID: "q\"b\\s/", Type: "c\b\f\n\r\t\x00\x1f\x7f", From: "é😀\u2028"},
			want: `{"id":"q\"b\\s/","type":"c\b\f\n\r\t\u0000\u001f` + "\x7f" + `","from":"é😀` + "\u2028" + `"}`,
		},
		{
			name: "invalid utf8 replaced",
			in:   &DataMessage{ID: "a\xffb\xc3", Type: "t"},
			want: `{"id":"a\ufffdb\ufffd","type":"t"}`,
		},
		{
			name: "html not escaped",
			in:   &DataMessage{ID: "<a&b>", Type: "t"},
			want: `{"id":"<a&b>","type":"t"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := AppendData([]byte("prefix"), tt.in)
			require.Equal(t, "prefix"+tt.want, string(got))
			require.True(t, json.Valid(got[len("prefix"):]))
			js, err := json.Marshal(tt.in)
			require.NoError(t, err)
			require.JSONEq(t, tt.want, string(js))
		})
	}
}

// TestAppendStringMatchesEncodingJSON checks the escaper against
// encoding/json: both must decode to the same string.
func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "plain", "\"\\/", "\x00\x01\x1f ", "ümlaut", "😀", "\u2028\u2029", "<>&", "\ufffd", "tab\there"} {
		t.Run(s, func(t *testing.T) {
			t.Parallel()
			var back string
			require.NoError(t, json.Unmarshal(appendString(nil, s), &back))
			require.Equal(t, s, back)
		})
	}
}

func TestAppendTransport(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   *TransportMessage
		want string
	}{
		{name: "received", in: &TransportMessage{Type: TransportReceived, Data: "m1"}, want: `{"type":100,"data":"m1"}`},
		{name: "ack", in: &TransportMessage{Type: TransportAck, Data: "m1"}, want: `{"type":200,"data":"m1"}`},
		{name: "delivered", in: &TransportMessage{Type: TransportDelivered, Data: "m1"}, want: `{"type":300,"data":"m1"}`},
		{name: "ready", in: &TransportMessage{Type: TransportReady, Data: "k\"ey"}, want: `{"type":1000,"data":"k\"ey"}`},
		{name: "ping", in: &TransportMessage{Type: TransportPing}, want: `{"type":1001}`},
		{name: "pong", in: &TransportMessage{Type: TransportPong}, want: `{"type":1002}`},
		{name: "signed", in: &TransportMessage{Type: TransportAck, Data: "m1", Sign: "ab"}, want: `{"type":200,"data":"m1","sign":"ab"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, string(AppendTransport(nil, tt.in)))
			require.Equal(t, tt.want, string(AppendFrame(nil, tt.in)))
			js, err := json.Marshal(tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.want, string(js))
			back, err := Decode([]byte(tt.want))
			require.NoError(t, err)
			require.Equal(t, tt.in, back)
		})
	}
}

func TestAppendFrameNil(t *testing.T) {
	t.Parallel()
	require.Equal(t, "x", string(AppendFrame([]byte("x"), nil)))
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   Frame
	}{
		{name: "direct", in: &DataMessage{ID: "9f1c", Type: "direct", Time: 1, From: "@alice@localhost", Dest: "@bob@localhost", Data: json.RawMessage(`{"text":"hi"}`), Sign: "00"}},
		{name: "escapes", in: &DataMessage{ID: "\"\\/<é>", Type: "t\"", From: "\n\u0000", Sign: "\t", Dest: "bob", Data: json.RawMessage(`["\u0000","\"",1e5,-0.5,true,false,null,{}]`)}},
		{name: "string data", in: &DataMessage{ID: "1", Type: "t", Data: json.RawMessage(`"just text"`)}},
		{name: "ready", in: &TransportMessage{Type: TransportReady, Data: "key"}},
		{name: "pong signed", in: &TransportMessage{Type: TransportPong, Sign: "ab"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Decode(AppendFrame(nil, tt.in))
			require.NoError(t, err)
			require.Equal(t, tt.in, got)
		})
	}
}
