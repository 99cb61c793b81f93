package chain_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	deliveryv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/delivery/v1"
	"github.com/bachata-chat/bachata/services/router/chain"
)

func TestDeliverRecipientNamesAUserOrARoom(t *testing.T) {
	for name, r := range map[string]*deliveryv1.Recipient{
		"neither": {},
		"both":    {User: "@bob@localhost", Room: "!general@localhost"},
	} {
		c, err := chain.New(fixed{chain.Deliver(chain.Delivery{Recipients: []*deliveryv1.Recipient{r}})})
		require.NoError(t, err)
		_, err = c.Run(t.Context(), &chain.Request{Message: &commonv1.Message{Id: "1", Type: "x"}})
		require.ErrorIs(t, err, chain.ErrBadDecision, name)
	}
}

// fixed is a route that always decides d.
type fixed struct{ d chain.Decision }

func (fixed) Name() string { return "fixed" }

func (f fixed) Process(context.Context, *chain.Request) (chain.Decision, error) { return f.d, nil }
