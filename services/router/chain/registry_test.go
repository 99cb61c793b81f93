package chain_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	"github.com/bachata-chat/bachata/services/router/chain"
)

// stop is a registered custom route that claims one type and replies.
type stop struct{ typ string }

func (s stop) Name() string { return "stop-" + s.typ }

func (s stop) Process(_ context.Context, req *chain.Request) (chain.Decision, error) {
	if req.Message.GetType() != s.typ {
		return chain.Pass(), nil
	}
	return chain.Reply(), nil
}

func TestRegistryBuildsTheChainInFileOrder(t *testing.T) {
	r := chain.NewRegistry()
	require.NoError(t, r.Register("stop", func(_ chain.Deps, o json.RawMessage) (chain.Route, error) {
		opts := struct {
			Type string `json:"type"`
		}{}
		if err := chain.DecodeOptions(o, &opts); err != nil {
			return nil, err
		}
		return stop{typ: opts.Type}, nil
	}))
	f, err := chain.ParseFile([]byte(`{"routes":[
		{"route":"handshake"},
		{"route":"stop","options":{"type":"direct"}},
		{"route":"ephemeral","options":{"types":["typing","seen"]}},
		{"route":"direct"}]}`))
	require.NoError(t, err)
	c, err := r.Build(chain.Deps{ServerName: "localhost"}, f.Routes)
	require.NoError(t, err)
	require.Equal(t, []string{"handshake", "stop-direct", "ephemeral", "direct"}, c.Names())

	// The custom route comes before direct, so it claims direct messages.
	res, err := c.Run(t.Context(), &chain.Request{
		Message: &commonv1.Message{Id: "1", Type: "direct", Dest: "bob"},
		Sender:  &commonv1.DeviceRef{User: "@alice@localhost", Device: "phone"},
	})
	require.NoError(t, err)
	require.Equal(t, "stop-direct", res.Route)
	require.Equal(t, chain.KindReply, res.Decision.Kind())
}

// noRequests is a Requester for chains that are built but never run.
type noRequests struct{}

func (noRequests) RequestMsgWithContext(context.Context, *nats.Msg) (*nats.Msg, error) {
	return nil, nats.ErrNoResponders
}

func TestDefaultChain(t *testing.T) {
	require.True(t, chain.NeedsNATS(chain.DefaultSpecs()))
	c, err := chain.NewRegistry().Build(chain.Deps{ServerName: "localhost", NATS: noRequests{}, Members: &rooms{}}, chain.DefaultSpecs())
	require.NoError(t, err)
	require.Equal(t, []string{"handshake", "ephemeral", "app", "group", "direct"}, c.Names())

	_, err = chain.NewRegistry().Build(chain.Deps{ServerName: "localhost"}, chain.DefaultSpecs())
	require.ErrorContains(t, err, "needs a NATS connection")
	require.False(t, chain.NeedsNATS([]chain.Spec{{Route: "direct"}}))
}

func TestAppRouteOptions(t *testing.T) {
	deps := chain.Deps{ServerName: "localhost", NATS: noRequests{}}
	c, err := chain.NewRegistry().Build(deps, []chain.Spec{{Route: "app", Options: json.RawMessage(`{"timeout":"250ms"}`)}})
	require.NoError(t, err)
	require.Equal(t, []string{"app"}, c.Names())
	for _, bad := range []string{`{"timeout":"soon"}`, `{"timeout":"-1s"}`, `{"wait":"1s"}`} {
		_, err := chain.NewRegistry().Build(deps, []chain.Spec{{Route: "app", Options: json.RawMessage(bad)}})
		require.Error(t, err, bad)
	}
}

func TestBadRoutesFilesAreRefusedWithEveryProblem(t *testing.T) {
	for name, file := range map[string]string{
		"not json":        `routes:`,
		"unknown field":   `{"routes":[{"route":"direct"}],"extra":1}`,
		"no routes":       `{"routes":[]}`,
		"trailing object": `{"routes":[{"route":"direct"}]} {}`,
		"field typo":      `{"routes":[{"rout":"direct"}]}`,
	} {
		_, err := chain.ParseFile([]byte(file))
		require.Error(t, err, name)
	}

	_, err := chain.NewRegistry().Build(chain.Deps{ServerName: "localhost"}, []chain.Spec{
		{Route: "nope"},
		{Route: "direct", Options: json.RawMessage(`{"x":1}`)},
		{Route: "ephemeral", Options: json.RawMessage(`{"types":[]}`)},
		{Route: "ephemeral", Options: json.RawMessage(`{"typs":["typing"]}`)},
	})
	require.ErrorIs(t, err, chain.ErrUnknownRoute)
	for _, want := range []string{`route 1 "nope"`, `route 2 "direct"`, `route 3 "ephemeral"`, `route 4 "ephemeral"`} {
		require.ErrorContains(t, err, want)
	}

	_, err = chain.NewRegistry().Build(chain.Deps{}, []chain.Spec{{Route: "direct"}, {Route: "direct"}})
	require.ErrorIs(t, err, chain.ErrBadRoute, "a route twice")

	r := chain.NewRegistry()
	require.ErrorIs(t, r.Register("direct", func(chain.Deps, json.RawMessage) (chain.Route, error) { return stop{}, nil }), chain.ErrBadRoute)
}
