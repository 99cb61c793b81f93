package chain_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/bachata-chat/bachata/libs/protocol"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	deliveryv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/delivery/v1"
	"github.com/bachata-chat/bachata/services/router/chain"
)

// rooms answers CheckMember from a fixed table, or fails.
type rooms struct {
	members map[string][]string
	err     error
	calls   int
}

func (r *rooms) CheckMember(_ context.Context, in *deliveryv1.CheckMemberRequest, _ ...grpc.CallOption) (*deliveryv1.CheckMemberResponse, error) {
	r.calls++
	if r.err != nil {
		return nil, r.err
	}
	ms, ok := r.members[in.GetRoom()]
	member := false
	for _, m := range ms {
		member = member || m == in.GetUser()
	}
	return &deliveryv1.CheckMemberResponse{RoomExists: ok, Member: member}, nil
}

func TestGroupRoute(t *testing.T) {
	rs := &rooms{members: map[string][]string{"!general@localhost": {"@alice@localhost", "@bob@localhost"}}}
	g := chain.NewGroup("localhost", rs)
	alice := &commonv1.DeviceRef{User: "@alice@localhost", Device: "phone"}
	mallory := &commonv1.DeviceRef{User: "@mallory@localhost", Device: "pc"}
	run := func(typ, dest string, sender *commonv1.DeviceRef) chain.Decision {
		d, err := g.Process(t.Context(), &chain.Request{Message: &commonv1.Message{Id: "g1", Type: typ, Dest: dest}, Sender: sender})
		require.NoError(t, err)
		return d
	}

	d := run("group", "!general@localhost", alice)
	require.Equal(t, chain.KindDeliver, d.Kind())
	require.True(t, d.Delivery().Receipt)
	require.Len(t, d.Delivery().Recipients, 1)
	require.Equal(t, "!general@localhost", d.Delivery().Recipients[0].GetRoom())
	require.Equal(t, "phone", d.Delivery().Recipients[0].GetExcludeDevice())

	require.Equal(t, protocol.CodeNotMember, run("group", "!general@localhost", mallory).Rejection().Code)
	require.Equal(t, protocol.CodeDestNotFound, run("group", "!nowhere@localhost", alice).Rejection().Code)
	require.Equal(t, protocol.CodeDestNotFound, run("group", "!general@elsewhere.example", alice).Rejection().Code)

	calls := rs.calls
	for _, bad := range []string{"general", "@bob@localhost", "#general:localhost", "!Gen@localhost", "!@localhost", "!" + strings.Repeat("a", 300) + "@localhost", "!a b@localhost", "!general@"} {
		require.Equal(t, protocol.CodeInvalidDest, run("group", bad, alice).Rejection().Code, bad)
	}
	require.Equal(t, calls, rs.calls, "a bad room ID never reaches the membership store")

	require.Equal(t, chain.KindPass, run("direct", "bob", alice).Kind())

	// A system message reaches every member and owes no 300.
	sys := run("group", "!general@localhost", nil)
	require.Equal(t, chain.KindDeliver, sys.Kind())
	require.False(t, sys.Delivery().Receipt)

	// The membership store being down is retryable, not a rejection.
	rs.err = errors.New("down")
	_, err := g.Process(t.Context(), &chain.Request{Message: &commonv1.Message{Id: "g2", Type: "group", Dest: "!general@localhost"}, Sender: alice})
	require.ErrorIs(t, err, chain.ErrUnavailable)
}
