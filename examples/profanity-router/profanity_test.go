package main

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	"github.com/bachata-chat/bachata/services/router/chain"
)

// buildChain assembles this example's routes.json, as the router does.
func buildChain(t *testing.T) *chain.Chain {
	t.Helper()
	reg := chain.NewRegistry()
	require.NoError(t, reg.Register("profanity", newProfanity))
	data, err := os.ReadFile("routes.json")
	require.NoError(t, err)
	f, err := chain.ParseFile(data)
	require.NoError(t, err)
	// The app route needs NATS; it is not reached by these messages.
	var specs []chain.Spec
	for _, s := range f.Routes {
		if s.Route != "app" {
			specs = append(specs, s)
		}
	}
	c, err := reg.Build(chain.Deps{ServerName: "localhost"}, specs)
	require.NoError(t, err)
	return c
}

func route(t *testing.T, c *chain.Chain, typ, text string) chain.Result {
	t.Helper()
	data, err := json.Marshal(map[string]string{"text": text})
	require.NoError(t, err)
	res, err := c.Run(t.Context(), &chain.Request{
		Message: &commonv1.Message{Id: "m1", Type: typ, Dest: "bob", Data: data},
		Sender:  &commonv1.DeviceRef{User: "@alice@localhost", Device: "phone"},
	})
	require.NoError(t, err)
	return res
}

func TestProfanityStopsTheChainBeforeDirect(t *testing.T) {
	c := buildChain(t)
	require.Equal(t, []string{"handshake", "ephemeral", "profanity", "direct"}, c.Names())

	res := route(t, c, "direct", "Oh HECK, again")
	require.Equal(t, "profanity", res.Route)
	require.Equal(t, chain.KindReject, res.Decision.Kind())
	require.Equal(t, CodeProfanity, res.Decision.Rejection().Code)

	res = route(t, c, "direct", "all good")
	require.Equal(t, "direct", res.Route)
	require.Equal(t, chain.KindDeliver, res.Decision.Kind())

	res = route(t, c, "typing", "heck") // not a checked type
	require.Equal(t, "ephemeral", res.Route)
}

func TestProfanityOptions(t *testing.T) {
	for _, bad := range []string{`{}`, `{"words":[]}`, `{"words":["x"],"colour":"red"}`} {
		_, err := newProfanity(chain.Deps{}, json.RawMessage(bad))
		require.Error(t, err, bad)
	}
}
