package ws

import (
	"strconv"
	"strings"
	"testing"
	"time"

	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	eventsv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/events/v1"
	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
)

func TestDeliveriesGoToTheirConnection(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	phone := h.dial("alice", "phone")
	laptop := h.dial("alice", "laptop")
	bob := h.dial("bob", "phone")
	ids := map[string]string{}
	for _, c := range h.peers.Connects() {
		ids[c.GetDevice().GetUser()+"/"+c.GetDevice().GetDevice()] = c.GetConnectionId()
	}

	h.srv.Deliver(&eventsv1.DeliveryBatch{Deliveries: append(append(
		batchFor("@alice@localhost", "phone", ids["@alice@localhost/phone"], message("p1"), message("p2")).Deliveries,
		batchFor("@alice@localhost", "laptop", ids["@alice@localhost/laptop"], message("l1")).Deliveries...),
		batchFor("@bob@localhost", "phone", ids["@bob@localhost/phone"], message("b1")).Deliveries...),
	})
	f := phone.next()
	require.Equal(t, `{"id":"p1","type":"direct","time":1700000000000,"from":"@bob@localhost","dest":"alice","data":{"text":"hi"}}`, f.raw)
	require.Equal(t, "p2", phone.next().ID)
	require.Equal(t, "l1", laptop.next().ID)
	require.Equal(t, "b1", bob.next().ID)
	for _, c := range []*wsClient{phone, laptop, bob} {
		c.pingPong()
	}
}

func TestDeliveryForStaleConnectionIsDropped(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.dial("alice", "phone")
	connID := h.peers.Connects()[0].GetConnectionId()
	h.srv.Deliver(batchFor("@alice@localhost", "phone", "0123456789abcdef0123456789abcdef", message("stale")))
	h.srv.Deliver(batchFor("@alice@localhost", "tablet", connID, message("other-device")))
	h.srv.Deliver(batchFor("@alice@localhost", "phone", connID, message("fresh")))
	require.Equal(t, "fresh", c.next().ID, "stale deliveries are not written")
	c.pingPong()
}

func TestDeliveryWithSignatureAndEmptyData(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.dial("alice", "phone")
	connID := h.peers.Connects()[0].GetConnectionId()
	h.srv.Deliver(batchFor("@alice@localhost", "phone", connID, func(d *eventsv1.Delivery) {
		d.Item = &eventsv1.Delivery_Message{Message: &commonv1.Message{
			Id: "s1", Type: "direct", TimeMs: 7, From: "@bob@localhost", Dest: "@alice@localhost", Data: []byte(`"x"`), Sign: "00ff",
		}}
	}, func(d *eventsv1.Delivery) {
		d.Item = &eventsv1.Delivery_Message{Message: &commonv1.Message{Id: "", Type: "direct"}} // not writable: dropped
	}, func(d *eventsv1.Delivery) {
		d.Item = &eventsv1.Delivery_Message{Message: &commonv1.Message{Id: "e1", Type: "typing", From: "@bob@localhost"}}
	}))
	require.Equal(t, `{"id":"s1","type":"direct","time":7,"from":"@bob@localhost","dest":"@alice@localhost","data":"x","sign":"00ff"}`, c.next().raw)
	require.Equal(t, `{"id":"e1","type":"typing","from":"@bob@localhost"}`, c.next().raw)
	c.pingPong()
}

func TestReceiptIsWrittenThenConfirmed(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.dial("alice", "phone")
	connID := h.peers.Connects()[0].GetConnectionId()
	h.srv.Deliver(batchFor("@alice@localhost", "phone", connID, receipt(300, "m1")))
	require.Equal(t, `{"type":300,"data":"m1"}`, c.next().raw)
	eventually(t, func() bool { return len(h.peers.Acks()) == 1 }, "receipt confirmed")
	a := h.peers.Acks()[0]
	require.Equal(t, []string{"m1"}, a.GetReceiptIds())
	require.Empty(t, a.GetMessageIds())
	require.Equal(t, "@alice@localhost", a.GetDevice().GetUser())
	require.Equal(t, "phone", a.GetDevice().GetDevice())
}

func TestReceiptForStaleConnectionIsNotConfirmed(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.dial("alice", "phone")
	h.srv.Deliver(batchFor("@alice@localhost", "phone", "not-this-connection", receipt(300, "m1")))
	h.srv.Deliver(batchFor("@alice@localhost", "phone", h.peers.Connects()[0].GetConnectionId(), receipt(250, "bad-type")))
	c.pingPong()
	require.Empty(t, h.peers.Acks())
}

func TestClientAckIsForwarded(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.dial("alice", "phone")
	c.sendRaw(`{"type":200,"data":"m1"}`)
	c.sendRaw(`{"type":200,"data":"m2"}`)
	// Acks go to delivery in the background, in order, several per call.
	var acked []string
	eventually(t, func() bool {
		acked = acked[:0]
		for _, a := range h.peers.Acks() {
			require.Empty(t, a.GetReceiptIds())
			require.Equal(t, "@alice@localhost", a.GetDevice().GetUser())
			require.Equal(t, "phone", a.GetDevice().GetDevice())
			acked = append(acked, a.GetMessageIds()...)
		}
		return len(acked) == 2
	}, "both acks forwarded")
	require.Equal(t, []string{"m1", "m2"}, acked)

	calls := len(h.peers.Acks())
	c.sendRaw(`{"type":200}`) // an ack without its id
	f := c.next()
	require.Equal(t, 4004, f.errBody(t).ErrCode)
	c.pingPong()
	require.Len(t, h.peers.Acks(), calls, "nothing forwarded for it")
}

func TestSlowReaderIsClosedWith1013(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(o *Options, _ *string) {
		o.IO.QueueBytes = 64 << 10
		o.IO.WriteTimeout = 30 * time.Second
	})
	c := h.dial("alice", "phone")
	connID := h.peers.Connects()[0].GetConnectionId()
	// The client reads nothing while far more than the socket buffers and
	// the queue can hold is delivered.
	big := strings.Repeat("x", 8<<10)
	for i := 0; i < 4000 && len(h.peers.Detaches()) == 0; i++ {
		h.srv.Deliver(batchFor("@alice@localhost", "phone", connID, func(d *eventsv1.Delivery) {
			d.Item = &eventsv1.Delivery_Message{Message: &commonv1.Message{Id: "m", Type: "direct", Data: []byte(`"` + big + `"`)}}
		}))
	}
	code, reason, _ := c.closeStatus()
	require.Equal(t, websocket.StatusTryAgainLater, code)
	require.Equal(t, "try again later", reason)
	eventually(t, func() bool { return len(h.peers.Detaches()) == 1 }, "close path ran")
}

func TestAcksAreBatchedAndReachDeliveryBeforeTheDetach(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.dial("alice", "phone")
	const n = 500
	for i := range n {
		c.sendRaw(`{"type":200,"data":"m` + strconv.Itoa(i) + `"}`)
	}
	c.pingPong()
	require.NoError(t, c.conn.Close(websocket.StatusNormalClosure, "bye"))
	eventually(t, func() bool { return len(h.peers.Detaches()) == 1 }, "detached")

	// Every ack reached delivery before the detach, in order, in fewer
	// calls than acks.
	acks := h.peers.Acks()
	var acked []string
	for _, a := range acks {
		acked = append(acked, a.GetMessageIds()...)
	}
	require.Len(t, acked, n)
	for i, id := range acked {
		require.Equal(t, "m"+strconv.Itoa(i), id)
	}
	require.Less(t, len(acks), n, "acks are batched")
	t.Logf("%d acks in %d calls", n, len(acks))
}
