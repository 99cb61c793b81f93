package dispatch

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	eventsv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/events/v1"
)

func delivery(id string, dataSize int) *eventsv1.Delivery {
	return &eventsv1.Delivery{
		Device:       &commonv1.DeviceRef{User: "@bob@localhost", Device: "phone"},
		ConnectionId: "c1",
		Attempt:      1,
		Item:         &eventsv1.Delivery_Message{Message: &commonv1.Message{Id: id, Type: "text", Data: make([]byte, dataSize)}},
	}
}

func TestSplitBatchesFitsTheLimitAndKeepsOrder(t *testing.T) {
	var ds []*eventsv1.Delivery
	for i := range 20 {
		ds = append(ds, delivery(fmt.Sprintf("m%02d", i), 300))
	}
	const limit = 1000
	batches := splitBatches(ds, limit)
	if len(batches) < 7 {
		t.Fatalf("%d batches for 20 deliveries of ~340 bytes under %d bytes", len(batches), limit)
	}
	var got []string
	for _, b := range batches {
		if n := proto.Size(b); n > limit {
			t.Errorf("batch of %d bytes over the %d limit", n, limit)
		}
		for _, d := range b.GetDeliveries() {
			got = append(got, d.GetMessage().GetId())
		}
	}
	for i, id := range got {
		if want := fmt.Sprintf("m%02d", i); id != want {
			t.Fatalf("order: position %d has %s, want %s (all: %v)", i, id, want, got)
		}
	}
	if len(got) != len(ds) {
		t.Fatalf("%d deliveries out of %d", len(got), len(ds))
	}
}

func TestSplitBatchesGivesAnOversizedDeliveryItsOwnBatch(t *testing.T) {
	batches := splitBatches([]*eventsv1.Delivery{delivery("small", 10), delivery("huge", 5000), delivery("after", 10)}, 1000)
	if len(batches) != 3 || batches[1].GetDeliveries()[0].GetMessage().GetId() != "huge" {
		t.Fatalf("batches: %v", batches)
	}
	if one := splitBatches([]*eventsv1.Delivery{delivery("a", 10), delivery("b", 10)}, 0); len(one) != 1 {
		t.Fatalf("no limit gave %d batches", len(one))
	}
}
