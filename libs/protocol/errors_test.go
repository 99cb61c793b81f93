package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAppendError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   *Error
		want string
	}{
		{
			name: "seed example",
			in:   NewError(CodeUnknownType).For("abcd", "incorrectMessageType"),
			want: `{"id":"abcd","type":"incorrectMessageType:error","data":{"errCode":4100,"errText":"Incorrect type of message (type isn't implemented in the server)","errPayload":{}}}`,
		},
		{
			name: "no id, no type",
			in:   NewError(CodeInvalidJSON),
			want: `{"type":"error","data":{"errCode":4000,"errText":"frame is not valid JSON","errPayload":{}}}`,
		},
		{
			name: "id without type",
			in:   &Error{Code: CodeInvalidType, ID: "m1"},
			want: `{"id":"m1","type":"error","data":{"errCode":4002,"errText":"type must be a non-empty string or an integer","errPayload":{}}}`,
		},
		{
			name: "custom text and payload compacted",
			in:   &Error{Code: CodeRateLimited, Text: "slow \"down\"", Payload: json.RawMessage(" { \"retryAfterMs\" : 1000 } "), ID: "m", Type: "direct"},
			want: `{"id":"m","type":"direct:error","data":{"errCode":4290,"errText":"slow \"down\"","errPayload":{"retryAfterMs":1000}}}`,
		},
		{
			name: "payload not an object",
			in:   &Error{Code: CodeInternal, Payload: json.RawMessage(`[1]`)},
			want: `{"type":"error","data":{"errCode":5000,"errText":"internal server error","errPayload":{}}}`,
		},
		{
			name: "payload invalid",
			in:   &Error{Code: CodeInternal, Payload: json.RawMessage(`{"a":`)},
			want: `{"type":"error","data":{"errCode":5000,"errText":"internal server error","errPayload":{}}}`,
		},
		{
			name: "payload with trailing data",
			in:   &Error{Code: CodeInternal, Payload: json.RawMessage(`{}{}`)},
			want: `{"type":"error","data":{"errCode":5000,"errText":"internal server error","errPayload":{}}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := AppendError(nil, tt.in)
			require.Equal(t, tt.want, string(got))
			f, err := Decoder{AllowMissingID: true}.Decode(got)
			require.NoError(t, err, "a client must be able to decode every error reply")
			back, err := ParseError(f.(*DataMessage))
			require.NoError(t, err)
			require.Equal(t, tt.in.Code, back.Code)
			require.Equal(t, tt.in.ErrText(), back.Text)
			require.Equal(t, tt.in.ID, back.ID)
			require.Equal(t, tt.in.Type, back.Type)
		})
	}
}

func TestErrorMatching(t *testing.T) {
	t.Parallel()
	cause := errors.New("redis down")
	err := fmt.Errorf("route: %w", Errorf(CodeUnavailable, "enqueue: %w", cause))

	var pe *Error
	require.ErrorAs(t, err, &pe)
	require.Equal(t, CodeUnavailable, pe.Code)
	require.True(t, pe.Retryable())
	require.ErrorIs(t, err, &Error{Code: CodeUnavailable})
	require.NotErrorIs(t, err, &Error{Code: CodeTimeout})
	require.ErrorIs(t, err, cause, "the cause stays reachable")
	require.Equal(t, "protocol: 5001 service unavailable, retry later: enqueue: redis down", pe.Error())
	require.False(t, pe.Is(errors.New("other")))
}

func TestAsError(t *testing.T) {
	t.Parallel()
	require.Nil(t, AsError(nil))
	secret := errors.New("dial tcp 10.0.0.7:6379: connection refused")
	pe := AsError(secret)
	require.Equal(t, CodeInternal, pe.Code)
	require.Equal(t, "internal server error", pe.ErrText(), "internal details never reach clients")
	require.ErrorIs(t, pe, secret)
	orig := NewError(CodeForbidden)
	require.Same(t, orig, AsError(fmt.Errorf("x: %w", orig)))
}

func TestErrorFor(t *testing.T) {
	t.Parallel()
	base := NewError(CodeNotMember)
	e := base.For("m1", "group")
	require.Equal(t, "m1", e.ID)
	require.Equal(t, "group:error", e.ReplyType())
	require.Empty(t, base.ID, "For copies")
	require.Equal(t, "error", base.ReplyType())
}

func TestParseErrorRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   *DataMessage
	}{
		{name: "not an error type", in: &DataMessage{Type: "direct", Data: json.RawMessage(`{"errCode":1}`)}},
		{name: "no data", in: &DataMessage{Type: "error"}},
		{name: "data not object", in: &DataMessage{Type: "error", Data: json.RawMessage(`[]`)}},
		{name: "no errCode", in: &DataMessage{Type: "x:error", Data: json.RawMessage(`{"errText":"a"}`)}},
		{name: "float errCode", in: &DataMessage{Type: "x:error", Data: json.RawMessage(`{"errCode":1.5}`)}},
		{name: "numeric errText", in: &DataMessage{Type: "x:error", Data: json.RawMessage(`{"errCode":1,"errText":1}`)}},
		{name: "duplicate errCode", in: &DataMessage{Type: "x:error", Data: json.RawMessage(`{"errCode":1,"errCode":2}`)}},
		{name: "broken json", in: &DataMessage{Type: "x:error", Data: json.RawMessage(`{"errCode":1`)}},
		{name: "trailing", in: &DataMessage{Type: "x:error", Data: json.RawMessage(`{"errCode":1} x`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseError(tt.in)
			require.Error(t, err)
		})
	}
}
