package queue_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/bachata-chat/bachata/libs/testkit"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	"github.com/bachata-chat/bachata/services/delivery/internal/queue"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var (
	alicePhone = &commonv1.DeviceRef{User: "@alice@localhost", Device: "phone"}
	bobPhone   = &commonv1.DeviceRef{User: "@bob@localhost", Device: "phone"}
	bobLaptop  = &commonv1.DeviceRef{User: "@bob@localhost", Device: "laptop"}
)

func newStore(t *testing.T, window int) (*queue.Store, *testkit.Redis) {
	t.Helper()
	r := testkit.StartRedis(t, testkit.RedisOptions{AppendOnly: true})
	s, err := queue.New(r.Client(), queue.Options{Prefix: "test", DedupeTTL: time.Hour, Window: window})
	if err != nil {
		t.Fatal(err)
	}
	return s, r
}

func message(id string) *commonv1.Message {
	return &commonv1.Message{Id: id, Type: "text", From: alicePhone.GetUser(), Dest: bobPhone.GetUser(), Data: []byte(`{"text":"` + id + `"}`)}
}

func toBob() queue.Recipient {
	return queue.Recipient{User: bobPhone.GetUser(), Receipt: true}
}

func ids(ds []queue.Delivery) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		if d.Message != nil {
			out = append(out, d.Device.GetDevice()+":"+d.Message.GetId())
		} else {
			out = append(out, fmt.Sprintf("%s:%d:%s", d.Device.GetDevice(), d.ReceiptType, d.MessageID))
		}
	}
	return out
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

func attach(t *testing.T, s *queue.Store, d *commonv1.DeviceRef, conn string) queue.AttachResult {
	t.Helper()
	res, err := s.Attach(context.Background(), d, "gw-1", conn)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func enqueue(t *testing.T, s *queue.Store, id string, r queue.Recipient) queue.EnqueueResult {
	t.Helper()
	res, err := s.Enqueue(context.Background(), message(id), alicePhone, r)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestOfflineUserGetsMessagesOnFirstAttach(t *testing.T) {
	s, _ := newStore(t, 8)
	res := enqueue(t, s, "m1", toBob())
	if res.Duplicate || res.Devices != 0 || len(res.Deliveries) != 0 {
		t.Fatalf("enqueue to a user without devices: %+v", res)
	}
	enqueue(t, s, "m2", toBob())
	got := attach(t, s, bobPhone, "c1")
	equal(t, "first attach", ids(got.Deliveries), []string{"phone:m1", "phone:m2"})
	if got.Queued != 2 {
		t.Fatalf("queued = %d, want 2", got.Queued)
	}
	d := got.Deliveries[0]
	if d.GatewayID != "gw-1" || d.ConnectionID != "c1" || d.Attempt != 1 || string(d.Message.GetData()) != `{"text":"m1"}` {
		t.Fatalf("delivery = %+v", d)
	}
}

func TestOnlineDeviceGetsMessageAtOnceAndEveryDeviceGetsItsCopy(t *testing.T) {
	s, _ := newStore(t, 8)
	attach(t, s, bobPhone, "c1")
	attach(t, s, bobLaptop, "c2")
	res := enqueue(t, s, "m1", toBob())
	if res.Devices != 2 {
		t.Fatalf("devices = %d, want 2", res.Devices)
	}
	equal(t, "deliveries", ids(res.Deliveries), []string{"laptop:m1", "phone:m1"})
}

func TestReceiptOnlyOnFirstAckAndBodyFreedAfterLast(t *testing.T) {
	s, r := newStore(t, 8)
	ctx := context.Background()
	attach(t, s, bobPhone, "c1")
	attach(t, s, bobLaptop, "c2")
	enqueue(t, s, "m1", toBob())

	first, err := s.Ack(ctx, bobPhone, []string{"m1"})
	if err != nil {
		t.Fatal(err)
	}
	if first.Acked != 1 || len(first.Receipts) != 1 || first.Receipts[0].MessageID != "m1" ||
		first.Receipts[0].To.GetDevice() != alicePhone.GetDevice() || first.Receipts[0].To.GetUser() != alicePhone.GetUser() {
		t.Fatalf("first ack: %+v", first)
	}
	second, err := s.Ack(ctx, bobLaptop, []string{"m1"})
	if err != nil {
		t.Fatal(err)
	}
	if second.Acked != 1 || len(second.Receipts) != 0 {
		t.Fatalf("second ack: %+v", second)
	}
	again, err := s.Ack(ctx, bobLaptop, []string{"m1"})
	if err != nil {
		t.Fatal(err)
	}
	if again.Acked != 0 || len(again.Receipts) != 0 {
		t.Fatalf("repeated ack: %+v", again)
	}
	keys, err := r.Client().Keys(ctx, "test:{@bob@localhost}:m:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Fatalf("message bodies left after every device acked: %v", keys)
	}
}

func TestCopyNeverAsksForReceiptAndSkipsSendingDevice(t *testing.T) {
	s, _ := newStore(t, 8)
	ctx := context.Background()
	aliceLaptop := &commonv1.DeviceRef{User: alicePhone.GetUser(), Device: "laptop"}
	copyToAlice := queue.Recipient{User: alicePhone.GetUser(), ExcludeDevice: "phone", Copy: true}

	// Alone on her phone, a copy has nowhere to go and does not wait.
	attach(t, s, alicePhone, "a1")
	if res := enqueue(t, s, "m1", copyToAlice); res.Devices != 0 || len(res.Deliveries) != 0 {
		t.Fatalf("copy with no other device: %+v", res)
	}
	attach(t, s, aliceLaptop, "a2")
	res := enqueue(t, s, "m2", copyToAlice)
	equal(t, "copy", ids(res.Deliveries), []string{"laptop:m2"})
	ack, err := s.Ack(ctx, aliceLaptop, []string{"m2"})
	if err != nil {
		t.Fatal(err)
	}
	if ack.Acked != 1 || len(ack.Receipts) != 0 {
		t.Fatalf("ack of a copy: %+v", ack)
	}
}

func TestResentIDIsQueuedOnce(t *testing.T) {
	s, _ := newStore(t, 8)
	attach(t, s, bobPhone, "c1")
	if res := enqueue(t, s, "m1", toBob()); res.Duplicate || len(res.Deliveries) != 1 {
		t.Fatalf("first send: %+v", res)
	}
	if res := enqueue(t, s, "m1", toBob()); !res.Duplicate || len(res.Deliveries) != 0 {
		t.Fatalf("resend: %+v", res)
	}
	// The same id from another sender is another message.
	carol := &commonv1.DeviceRef{User: "@carol@localhost", Device: "web"}
	res, err := s.Enqueue(context.Background(), message("m1"), carol, toBob())
	if err != nil {
		t.Fatal(err)
	}
	if res.Duplicate {
		t.Fatal("same id from another sender taken for a duplicate")
	}
}

func TestWindowHoldsBackUntilAcked(t *testing.T) {
	s, _ := newStore(t, 2)
	ctx := context.Background()
	attach(t, s, bobPhone, "c1")
	var pushed []string
	for i := range 5 {
		pushed = append(pushed, ids(enqueue(t, s, fmt.Sprintf("m%d", i), toBob()).Deliveries)...)
	}
	equal(t, "within window", pushed, []string{"phone:m0", "phone:m1"})
	res, err := s.Ack(ctx, bobPhone, []string{"m0", "m1"})
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "after ack", ids(res.Deliveries), []string{"phone:m2", "phone:m3"})
}

func TestInFlightRedeliveredInOrderOnReconnect(t *testing.T) {
	s, _ := newStore(t, 2)
	ctx := context.Background()
	attach(t, s, bobPhone, "c1")
	for i := range 3 {
		enqueue(t, s, fmt.Sprintf("m%d", i), toBob())
	}
	if err := s.Detach(ctx, bobPhone, "c1"); err != nil {
		t.Fatal(err)
	}
	got := attach(t, s, bobPhone, "c2")
	equal(t, "redelivery", ids(got.Deliveries), []string{"phone:m0", "phone:m1"})
	if got.Queued != 3 || got.Deliveries[0].Attempt != 2 || got.Deliveries[0].ConnectionID != "c2" {
		t.Fatalf("redelivery: queued %d, first %+v", got.Queued, got.Deliveries[0])
	}
}

func TestStaleDetachLeavesNewConnectionAlone(t *testing.T) {
	s, _ := newStore(t, 8)
	ctx := context.Background()
	attach(t, s, bobPhone, "c1")
	attach(t, s, bobPhone, "c2")
	if err := s.Detach(ctx, bobPhone, "c1"); err != nil {
		t.Fatal(err)
	}
	res := enqueue(t, s, "m1", toBob())
	if len(res.Deliveries) != 1 || res.Deliveries[0].ConnectionID != "c2" {
		t.Fatalf("after a stale detach: %+v", res.Deliveries)
	}
}

func TestDetachedDeviceQueuesWithoutPushing(t *testing.T) {
	s, _ := newStore(t, 8)
	ctx := context.Background()
	attach(t, s, bobPhone, "c1")
	if err := s.Detach(ctx, bobPhone, "c1"); err != nil {
		t.Fatal(err)
	}
	res := enqueue(t, s, "m1", toBob())
	if res.Devices != 1 || len(res.Deliveries) != 0 {
		t.Fatalf("enqueue to a known offline device: %+v", res)
	}
}

func TestReceiptQueuedForSenderAndRemovedWhenConfirmed(t *testing.T) {
	s, _ := newStore(t, 8)
	ctx := context.Background()
	// The sender went offline: the receipt waits in its queue.
	ds, err := s.PushReceipt(ctx, alicePhone, "m1", 300)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 0 {
		t.Fatalf("receipt pushed to a detached device: %v", ids(ds))
	}
	got := attach(t, s, alicePhone, "a1")
	equal(t, "receipt on attach", ids(got.Deliveries), []string{"phone:300:m1"})
	// A message ack does not remove a receipt with the same id.
	if res, err := s.Ack(ctx, alicePhone, []string{"m1"}); err != nil || res.Acked != 0 {
		t.Fatalf("message ack of a receipt: %+v, %v", res, err)
	}
	res, err := s.AckReceipts(ctx, alicePhone, []string{"m1"})
	if err != nil || res.Acked != 1 {
		t.Fatalf("receipt confirmation: %+v, %v", res, err)
	}
	if err := s.Detach(ctx, alicePhone, "a1"); err != nil {
		t.Fatal(err)
	}
	if again := attach(t, s, alicePhone, "a2"); len(again.Deliveries) != 0 {
		t.Fatalf("confirmed receipt came again: %v", ids(again.Deliveries))
	}
}

// TestAcceptedMessageSurvivesRedisCrash kills Redis with SIGKILL after an
// enqueue returned: with AOF fsync on every write, the message is there
// after the restart, in flight messages included.
func TestAcceptedMessageSurvivesRedisCrash(t *testing.T) {
	s, r := newStore(t, 1)
	ctx := context.Background()
	attach(t, s, bobPhone, "c1")
	enqueue(t, s, "m1", toBob())
	enqueue(t, s, "m2", toBob())
	r.Kill()
	if _, err := s.Enqueue(ctx, message("m3"), alicePhone, toBob()); err == nil {
		t.Fatal("enqueue with Redis down reported success")
	}
	r.Restart()
	if err := s.Detach(ctx, bobPhone, "c1"); err != nil {
		t.Fatal(err)
	}
	got := attach(t, s, bobPhone, "c2")
	equal(t, "after crash", ids(got.Deliveries), []string{"phone:m1"})
	res, err := s.Ack(ctx, bobPhone, []string{"m1"})
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "after ack", ids(res.Deliveries), []string{"phone:m2"})
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, o := range []queue.Options{
		{Prefix: "", DedupeTTL: time.Hour, Window: 1},
		{Prefix: "a{b", DedupeTTL: time.Hour, Window: 1},
		{Prefix: "p", DedupeTTL: 0, Window: 1},
		{Prefix: "p", DedupeTTL: time.Hour, Window: 0},
	} {
		if _, err := queue.New(nil, o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}
