package chain_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bachata-chat/bachata/libs/protocol"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	"github.com/bachata-chat/bachata/services/router/chain"
)

func TestEphemeralSendsOwnTypesToTheDestOnly(t *testing.T) {
	e, err := chain.NewEphemeral("localhost", "typing", "seen")
	require.NoError(t, err)
	alice := &commonv1.DeviceRef{User: "@alice@localhost", Device: "phone"}
	run := func(typ, dest string, sender *commonv1.DeviceRef) chain.Decision {
		d, err := e.Process(t.Context(), &chain.Request{Message: &commonv1.Message{Id: "t1", Type: typ, Dest: dest}, Sender: sender})
		require.NoError(t, err)
		return d
	}

	d := run("typing", "bob", alice)
	require.Equal(t, chain.KindSend, d.Kind())
	require.Len(t, d.Delivery().Recipients, 1)
	require.Equal(t, "@bob@localhost", d.Delivery().Recipients[0].GetUser())
	require.Empty(t, d.Delivery().Recipients[0].GetExcludeDevice())
	require.False(t, d.Delivery().Recipients[0].GetCopy())

	require.Equal(t, chain.KindSend, run("seen", "@bob@localhost", alice).Kind())
	require.Equal(t, chain.KindPass, run("direct", "bob", alice).Kind(), "a type it does not own")

	self := run("typing", "alice", alice)
	require.Equal(t, "phone", self.Delivery().Recipients[0].GetExcludeDevice(), "never back to the sending device")

	bad := run("typing", "Not A User!", alice)
	require.Equal(t, chain.KindReject, bad.Kind())
	require.Equal(t, protocol.CodeInvalidDest, bad.Rejection().Code)
	remote := run("typing", "@bob@elsewhere.example", alice)
	require.Equal(t, protocol.CodeDestNotFound, remote.Rejection().Code)

	_, err = chain.NewEphemeral("localhost")
	require.ErrorIs(t, err, chain.ErrNoTypes)
}
