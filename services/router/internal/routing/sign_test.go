package routing

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bachata-chat/bachata/libs/protocol"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	routerv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/router/v1"
)

// signed returns m signed with key the way a client signs it.
func signed(key string, m *commonv1.Message) *commonv1.Message {
	m.Sign = protocol.Sign(key, dataMessage(m))
	return m
}

func TestSignatures(t *testing.T) {
	t.Parallel()
	hello := func() *commonv1.Message {
		return &commonv1.Message{Id: "hs", Type: "handshake", Data: []byte(`{"title":"Hello world!","session":"` + sessionKey + `"}`)}
	}
	tests := []struct {
		name        string
		requireSign bool
		req         *routerv1.RouteRequest
		wantOutcome routerv1.Outcome
		wantCode    protocol.Code
	}{
		{
			name:        "unsigned, not required",
			req:         fromAlice(directToBob("m")),
			wantOutcome: routerv1.Outcome_OUTCOME_QUEUED,
		},
		{
			name:        "good sign",
			req:         fromAlice(signed(sessionKey, directToBob("m"))),
			wantOutcome: routerv1.Outcome_OUTCOME_QUEUED,
		},
		{
			name: "good sign with a forged from and time: they are not signed, and replaced",
			req: fromAlice(func() *commonv1.Message {
				m := signed(sessionKey, directToBob("m"))
				m.From, m.TimeMs = "@mallory@localhost", 7
				return m
			}()),
			wantOutcome: routerv1.Outcome_OUTCOME_QUEUED,
		},
		{
			name:        "good sign, required",
			requireSign: true,
			req:         fromAlice(signed(sessionKey, directToBob("m"))),
			wantOutcome: routerv1.Outcome_OUTCOME_QUEUED,
		},
		{
			name:        "signed with another key",
			req:         fromAlice(signed("other-key", directToBob("m"))),
			wantOutcome: routerv1.Outcome_OUTCOME_REJECTED,
			wantCode:    protocol.CodeSignInvalid,
		},
		{
			name: "data changed after signing",
			req: fromAlice(func() *commonv1.Message {
				m := signed(sessionKey, directToBob("m"))
				m.Data = []byte(`{"text":"bye"}`)
				return m
			}()),
			wantOutcome: routerv1.Outcome_OUTCOME_REJECTED,
			wantCode:    protocol.CodeSignInvalid,
		},
		{
			name: "dest changed after signing",
			req: fromAlice(func() *commonv1.Message {
				m := signed(sessionKey, directToBob("m"))
				m.Dest = "carol"
				return m
			}()),
			wantOutcome: routerv1.Outcome_OUTCOME_REJECTED,
			wantCode:    protocol.CodeSignInvalid,
		},
		{
			name: "not hex",
			req: fromAlice(func() *commonv1.Message {
				m := directToBob("m")
				m.Sign = "not-a-signature"
				return m
			}()),
			wantOutcome: routerv1.Outcome_OUTCOME_REJECTED,
			wantCode:    protocol.CodeSignInvalid,
		},
		{
			name: "connection without a session key never verifies",
			req: func() *routerv1.RouteRequest {
				r := fromAlice(signed("", directToBob("m")))
				r.Sender.SessionKey = ""
				return r
			}(),
			wantOutcome: routerv1.Outcome_OUTCOME_REJECTED,
			wantCode:    protocol.CodeSignInvalid,
		},
		{
			name:        "required but missing",
			requireSign: true,
			req:         fromAlice(directToBob("m")),
			wantOutcome: routerv1.Outcome_OUTCOME_REJECTED,
			wantCode:    protocol.CodeSignRequired,
		},
		{
			name:        "required, unknown type: the signature is checked first",
			requireSign: true,
			req:         fromAlice(&commonv1.Message{Id: "m", Type: "no-such-type"}),
			wantOutcome: routerv1.Outcome_OUTCOME_REJECTED,
			wantCode:    protocol.CodeSignRequired,
		},
		{
			name:        "required, but a handshake needs none",
			requireSign: true,
			req:         fromAlice(hello()),
			wantOutcome: routerv1.Outcome_OUTCOME_REPLIED,
		},
		{
			name: "handshake signed with a stale key is still answered",
			req: fromAlice(func() *commonv1.Message {
				return signed("stale-key", hello())
			}()),
			wantOutcome: routerv1.Outcome_OUTCOME_REPLIED,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{requireSign: tt.requireSign})
			resp, err := e.router.Route(t.Context(), tt.req)
			require.NoError(t, err)
			require.Equal(t, tt.wantOutcome, resp.GetOutcome(), "error %v", resp.GetError())
			switch tt.wantOutcome {
			case routerv1.Outcome_OUTCOME_REJECTED:
				require.Equal(t, int32(tt.wantCode), resp.GetError().GetCode())
				require.Empty(t, e.delivery.enqueued())
			case routerv1.Outcome_OUTCOME_QUEUED:
				got := e.delivery.enqueued()
				require.Len(t, got, 1)
				require.Equal(t, "@alice@localhost", got[0].GetMessage().GetFrom())
				require.Equal(t, testNow.UnixMilli(), got[0].GetMessage().GetTimeMs())
				require.Equal(t, tt.req.GetMessage().GetSign(), got[0].GetMessage().GetSign(), "sign travels on unchanged")
			}
		})
	}
}

// TestHandshakeOverGRPC: the handshake is answered on the connection and
// nothing is queued.
func TestHandshakeOverGRPC(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		session  string
		wantData string
	}{
		{name: "current key", session: sessionKey, wantData: `{"title":"DIM!","session":"` + sessionKey + `"}`},
		{name: "stale key", session: "old", wantData: `{"title":"DIM?","session":"` + sessionKey + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{})
			resp, err := e.router.Route(t.Context(), fromAlice(&commonv1.Message{
				Id: "hs-1", Type: "handshake", Data: []byte(`{"title":"Hello world!","session":"` + tt.session + `"}`),
			}))
			require.NoError(t, err)
			require.Equal(t, routerv1.Outcome_OUTCOME_REPLIED, resp.GetOutcome())
			require.Equal(t, "handshake", resp.GetRoute())
			require.Equal(t, testNow.UnixMilli(), resp.GetTimeMs())
			require.Len(t, resp.GetReplies(), 1)
			r := resp.GetReplies()[0]
			require.Equal(t, "hs-1", r.GetId())
			require.Equal(t, "handshake", r.GetType())
			require.JSONEq(t, tt.wantData, string(r.GetData()))
			require.Empty(t, e.delivery.enqueued())
		})
	}
}
