package chain

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bachata-chat/bachata/libs/protocol"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	deliveryv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/delivery/v1"
)

func TestDirect(t *testing.T) {
	t.Parallel()
	alicePhone := &commonv1.DeviceRef{User: "@alice@localhost", Device: "phone"}
	tests := []struct {
		name           string
		typ            string
		dest           string
		sender         *commonv1.DeviceRef
		wantKind       Kind
		wantCode       protocol.Code
		wantRecipients []*deliveryv1.Recipient
		wantReceipt    bool
	}{
		{
			name:     "other types pass",
			typ:      "group",
			dest:     "bob",
			sender:   alicePhone,
			wantKind: KindPass,
		},
		{
			name:     "bare username",
			typ:      "direct",
			dest:     "bob",
			sender:   alicePhone,
			wantKind: KindDeliver,
			wantRecipients: []*deliveryv1.Recipient{
				{User: "@bob@localhost"},
				{User: "@alice@localhost", ExcludeDevice: "phone", Copy: true},
			},
			wantReceipt: true,
		},
		{
			name:     "entity ID",
			typ:      "direct",
			dest:     "@bob@localhost",
			sender:   alicePhone,
			wantKind: KindDeliver,
			wantRecipients: []*deliveryv1.Recipient{
				{User: "@bob@localhost"},
				{User: "@alice@localhost", ExcludeDevice: "phone", Copy: true},
			},
			wantReceipt: true,
		},
		{
			name:     "self message: one recipient without the sending device, no copy",
			typ:      "direct",
			dest:     "alice",
			sender:   alicePhone,
			wantKind: KindDeliver,
			wantRecipients: []*deliveryv1.Recipient{
				{User: "@alice@localhost", ExcludeDevice: "phone"},
			},
			wantReceipt: true,
		},
		{
			name:     "self message by entity ID",
			typ:      "direct",
			dest:     "@alice@localhost",
			sender:   alicePhone,
			wantKind: KindDeliver,
			wantRecipients: []*deliveryv1.Recipient{
				{User: "@alice@localhost", ExcludeDevice: "phone"},
			},
			wantReceipt: true,
		},
		{
			name:           "system message: the dest user alone, no receipt",
			typ:            "direct",
			dest:           "bob",
			sender:         nil,
			wantKind:       KindDeliver,
			wantRecipients: []*deliveryv1.Recipient{{User: "@bob@localhost"}},
			wantReceipt:    false,
		},
		{name: "missing dest", typ: "direct", dest: "", sender: alicePhone, wantKind: KindReject, wantCode: protocol.CodeInvalidDest},
		{name: "uppercase username", typ: "direct", dest: "Bob", sender: alicePhone, wantKind: KindReject, wantCode: protocol.CodeInvalidDest},
		{name: "room instead of user", typ: "direct", dest: "!room@localhost", sender: alicePhone, wantKind: KindReject, wantCode: protocol.CodeInvalidDest},
		{name: "user without server", typ: "direct", dest: "@bob", sender: alicePhone, wantKind: KindReject, wantCode: protocol.CodeInvalidDest},
		{name: "bad server part", typ: "direct", dest: "@bob@Local_Host", sender: alicePhone, wantKind: KindReject, wantCode: protocol.CodeInvalidDest},
		{name: "user on another server", typ: "direct", dest: "@bob@example.org", sender: alicePhone, wantKind: KindReject, wantCode: protocol.CodeDestNotFound},
		{name: "same host, other port is another server", typ: "direct", dest: "@bob@localhost:8448", sender: alicePhone, wantKind: KindReject, wantCode: protocol.CodeDestNotFound},
	}
	route := NewDirect("localhost")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := &Request{
				Message: &commonv1.Message{Id: "m1", Type: tt.typ, Dest: tt.dest, From: tt.sender.GetUser(), Data: []byte(`{"text":"hi"}`)},
				Sender:  tt.sender,
			}
			d, err := route.Process(t.Context(), req)
			require.NoError(t, err)
			require.Equal(t, tt.wantKind, d.Kind())
			require.NoError(t, d.check())
			switch tt.wantKind {
			case KindReject:
				require.Equal(t, tt.wantCode, d.Rejection().Code)
				require.Contains(t, d.Rejection().ErrText(), tt.dest)
			case KindDeliver:
				require.Len(t, d.Delivery().Recipients, len(tt.wantRecipients))
				for i, want := range tt.wantRecipients {
					got := d.Delivery().Recipients[i]
					require.Equal(t, want.GetUser(), got.GetUser(), "recipient %d user", i)
					require.Equal(t, want.GetExcludeDevice(), got.GetExcludeDevice(), "recipient %d exclude_device", i)
					require.Equal(t, want.GetCopy(), got.GetCopy(), "recipient %d copy", i)
				}
				require.Equal(t, tt.wantReceipt, d.Delivery().Receipt)
			}
		})
	}
}

func TestDirectName(t *testing.T) {
	t.Parallel()
	require.Equal(t, "direct", NewDirect("localhost").Name())
}
