package protocol

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The golden signatures were computed outside Go, so the canonical form is
// pinned by an independent implementation:
//
//	printf 'bachata-sign-v1\n<id>\ndirect\n@bob@localhost\n<data>' | openssl dgst -sha256 -hmac "$KEY"
//
// and the JavaScript one with node's crypto.createHmac over
// JSON.stringify(data) (see docs/protocol.md, "Signatures").
const testSessionKey = "Zm9vYmFyLXNlc3Npb24ta2V5"

func TestSignGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		frame string // as a client sends it, without sign
		want  string
	}{
		{
			name:  "escapes kept as sent (openssl, python hmac)",
			frame: `{"id":"9f1c2a7e-1b0d-4c53-a8e2-5d7f3b9c0e41","type":"direct","dest":"@bob@localhost","data":{"text":"hi Bob, caf\u00e9 \"ok\""}}`,
			want:  "99e27c7948ffeb12afb868baeacc0fdbe7981eeca606ef219bce78f9a1c13e89",
		},
		{
			name:  "JSON.stringify output (node)",
			frame: `{"id":"9f1c2a7e-1b0d-4c53-a8e2-5d7f3b9c0e41","type":"direct","dest":"@bob@localhost","data":{"text":"hi Bob, café 👋","n":[1,2.5,{"x":null}]}}`,
			want:  "0c3e7e3be3893d8bfc45e94c7a060c388f458389e7bdb52b4426a325983543e9",
		},
		{
			name:  "whitespace in data does not matter",
			frame: "{\"id\":\"9f1c2a7e-1b0d-4c53-a8e2-5d7f3b9c0e41\", \"type\":\"direct\",\"dest\":\"@bob@localhost\",\n \"data\": {\"text\": \"hi Bob, café 👋\", \"n\": [1, 2.5, {\"x\": null}]}}",
			want:  "0c3e7e3be3893d8bfc45e94c7a060c388f458389e7bdb52b4426a325983543e9",
		},
		{
			name:  "from and time are not covered",
			frame: `{"id":"9f1c2a7e-1b0d-4c53-a8e2-5d7f3b9c0e41","type":"direct","time":5,"from":"@eve@x","dest":"@bob@localhost","data":{"text":"hi Bob, café 👋","n":[1,2.5,{"x":null}]}}`,
			want:  "0c3e7e3be3893d8bfc45e94c7a060c388f458389e7bdb52b4426a325983543e9",
		},
		{
			name:  "transport ack (openssl, node)",
			frame: `{"type":200,"data":"9f1c2a7e-1b0d-4c53-a8e2-5d7f3b9c0e41"}`,
			want:  "ee282d46282156431ee74241dfd47db687def26b5e3fb0cbaa10b99e39689225",
		},
		{
			name:  "transport ping (openssl)",
			frame: `{"type":1001}`,
			want:  "1a276213f1283126ab9c114f89944e6d1ce85618d3d6525c39953add753e2246",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := Decode([]byte(tt.frame))
			require.NoError(t, err)
			require.Equal(t, tt.want, Sign(testSessionKey, f))
			setSign(f, tt.want)
			require.NoError(t, Verify(testSessionKey, f))
			setSign(f, strings.ToUpper(tt.want))
			require.NoError(t, Verify(testSessionKey, f), "either hex case verifies")
		})
	}
}

func TestSignBareDest(t *testing.T) {
	t.Parallel()
	// printf 'bachata-sign-v1\nm1\ndirect\nbob\n{"text":"hi"}' | openssl dgst -sha256 -hmac session-key-1
	m := &DataMessage{ID: "m1", Type: "direct", Dest: "bob", Data: json.RawMessage(`{"text":"hi"}`)}
	require.Equal(t, "d00e102a3ff5214e08493494bee3511fa22df8b0f24d64d759f3d70d9c369d92", Sign("session-key-1", m))
	require.Equal(t, "bachata-sign-v1\nm1\ndirect\nbob\n{\"text\":\"hi\"}", string(AppendCanonical(nil, m)))
}

func setSign(f Frame, sign string) {
	switch m := f.(type) {
	case *DataMessage:
		m.Sign = sign
	case *TransportMessage:
		m.Sign = sign
	}
}

func TestVerifyRejects(t *testing.T) {
	t.Parallel()
	good := func() *DataMessage {
		m := &DataMessage{ID: "m1", Type: "direct", Dest: "bob", Data: json.RawMessage(`{"text":"hi"}`)}
		m.Sign = Sign("key", m)
		return m
	}
	tests := []struct {
		name   string
		key    string
		mutate func(m *DataMessage)
		code   Code
	}{
		{name: "unsigned", key: "key", mutate: func(m *DataMessage) { m.Sign = "" }, code: CodeSignRequired},
		{name: "wrong key", key: "other", mutate: func(*DataMessage) {}, code: CodeSignInvalid},
		{name: "empty key", key: "", mutate: func(*DataMessage) {}, code: CodeSignInvalid},
		{name: "id changed", key: "key", mutate: func(m *DataMessage) { m.ID = "m2" }, code: CodeSignInvalid},
		{name: "type changed", key: "key", mutate: func(m *DataMessage) { m.Type = "group" }, code: CodeSignInvalid},
		{name: "dest changed", key: "key", mutate: func(m *DataMessage) { m.Dest = "eve" }, code: CodeSignInvalid},
		{name: "data changed", key: "key", mutate: func(m *DataMessage) { m.Data = json.RawMessage(`{"text":"ho"}`) }, code: CodeSignInvalid},
		{name: "short", key: "key", mutate: func(m *DataMessage) { m.Sign = m.Sign[:62] }, code: CodeSignInvalid},
		{name: "not hex", key: "key", mutate: func(m *DataMessage) { m.Sign = strings.Repeat("zz", 32) }, code: CodeSignInvalid},
		{name: "flipped digit", key: "key", mutate: func(m *DataMessage) {
			b := []byte(m.Sign)
			b[10] ^= 1
			m.Sign = string(b)
		}, code: CodeSignInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := good()
			require.NoError(t, Verify("key", m))
			tt.mutate(m)
			requireCode(t, Verify(tt.key, m), tt.code)
		})
	}
	requireCode(t, Verify("key", nil), CodeSignInvalid)
}

func TestSignIgnoresOwnSign(t *testing.T) {
	t.Parallel()
	m := &TransportMessage{Type: TransportAck, Data: "m1"}
	s1 := Sign("k", m)
	m.Sign = "whatever"
	require.Equal(t, s1, Sign("k", m))
}

// TestCanonicalFormUnambiguous shows why Decode forbids control characters
// in id and type: with a newline in them, two different messages would
// share one canonical form and so one signature.
func TestCanonicalFormUnambiguous(t *testing.T) {
	t.Parallel()
	a := &DataMessage{ID: "a\nb", Type: "c"}
	b := &DataMessage{ID: "a", Type: "b\nc"}
	require.Equal(t, AppendCanonical(nil, a), AppendCanonical(nil, b))
	for _, m := range []*DataMessage{a, b} {
		_, err := Decode(AppendData(nil, m))
		require.Error(t, err, "such messages never get past Decode")
	}
}
