package chain

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bachata-chat/bachata/libs/protocol"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
)

func TestHandshake(t *testing.T) {
	t.Parallel()
	const key = "k-current"
	alice := &commonv1.DeviceRef{User: "@alice@localhost", Device: "phone"}
	tests := []struct {
		name       string
		typ        string
		data       string
		sender     *commonv1.DeviceRef
		sessionKey string
		wantKind   Kind
		wantCode   protocol.Code
		wantData   string
	}{
		{name: "other types pass", typ: "direct", data: `{"title":"Hello world!"}`, sender: alice, sessionKey: key, wantKind: KindPass},
		{
			name: "current session: DIM!", typ: "handshake", sender: alice, sessionKey: key,
			data:     `{"title":"Hello world!","session":"k-current"}`,
			wantKind: KindReply, wantData: `{"title":"DIM!","session":"k-current"}`,
		},
		{
			name: "stale session: DIM? with the current key", typ: "handshake", sender: alice, sessionKey: key,
			data:     `{"title":"Hello world!","session":"k-old"}`,
			wantKind: KindReply, wantData: `{"title":"DIM?","session":"k-current"}`,
		},
		{
			name: "no session (start): DIM? with the current key", typ: "handshake", sender: alice, sessionKey: key,
			data:     `{"title":"Hello world!"}`,
			wantKind: KindReply, wantData: `{"title":"DIM?","session":"k-current"}`,
		},
		{
			name: "null session is no session", typ: "handshake", sender: alice, sessionKey: key,
			data:     `{"title":"Hello world!","session":null}`,
			wantKind: KindReply, wantData: `{"title":"DIM?","session":"k-current"}`,
		},
		{
			name: "extra DIMP keys are ignored", typ: "handshake", sender: alice, sessionKey: key,
			data:     `{"type":136,"sn":12345,"command":"handshake","title":"Hello world!","message":"Hello world!","session":"k-current"}`,
			wantKind: KindReply, wantData: `{"title":"DIM!","session":"k-current"}`,
		},
		{name: "no data", typ: "handshake", data: ``, sender: alice, sessionKey: key, wantKind: KindReject, wantCode: protocol.CodeInvalidHandshake},
		{name: "data is a string", typ: "handshake", data: `"Hello world!"`, sender: alice, sessionKey: key, wantKind: KindReject, wantCode: protocol.CodeInvalidHandshake},
		{name: "no title", typ: "handshake", data: `{"session":"k-current"}`, sender: alice, sessionKey: key, wantKind: KindReject, wantCode: protocol.CodeInvalidHandshake},
		{name: "title not a string", typ: "handshake", data: `{"title":1}`, sender: alice, sessionKey: key, wantKind: KindReject, wantCode: protocol.CodeInvalidHandshake},
		{name: "session not a string", typ: "handshake", data: `{"title":"Hello world!","session":7}`, sender: alice, sessionKey: key, wantKind: KindReject, wantCode: protocol.CodeInvalidHandshake},
		{name: "server title from a client", typ: "handshake", data: `{"title":"DIM!","session":"k-current"}`, sender: alice, sessionKey: key, wantKind: KindReject, wantCode: protocol.CodeInvalidHandshake},
		{name: "system message has no connection", typ: "handshake", data: `{"title":"Hello world!"}`, sender: nil, wantKind: KindReject, wantCode: protocol.CodeInvalidHandshake},
	}
	route := NewHandshake()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var data []byte
			if tt.data != "" {
				data = []byte(tt.data)
			}
			req := &Request{
				Message:    &commonv1.Message{Id: "hs-1", Type: tt.typ, Data: data, From: tt.sender.GetUser(), TimeMs: 1234},
				Sender:     tt.sender,
				SessionKey: tt.sessionKey,
			}
			d, err := route.Process(t.Context(), req)
			require.NoError(t, err)
			require.NoError(t, d.check())
			require.Equal(t, tt.wantKind, d.Kind())
			switch tt.wantKind {
			case KindReject:
				require.Equal(t, tt.wantCode, d.Rejection().Code)
			case KindReply:
				require.Len(t, d.Replies(), 1)
				r := d.Replies()[0]
				require.Equal(t, "hs-1", r.GetId())
				require.Equal(t, "handshake", r.GetType())
				require.Equal(t, int64(1234), r.GetTimeMs())
				require.Equal(t, "@alice@localhost", r.GetDest())
				require.Empty(t, r.GetFrom(), "the server answers")
				require.JSONEq(t, tt.wantData, string(r.GetData()))
			}
		})
	}
}

func TestHandshakeSignOptional(t *testing.T) {
	t.Parallel()
	h := NewHandshake()
	require.True(t, h.SignOptional(&commonv1.Message{Type: "handshake"}))
	require.False(t, h.SignOptional(&commonv1.Message{Type: "direct"}))

	c, err := New(h, NewDirect("localhost"))
	require.NoError(t, err)
	require.True(t, c.SignOptional(&commonv1.Message{Type: "handshake"}))
	require.False(t, c.SignOptional(&commonv1.Message{Type: "direct"}))
}
