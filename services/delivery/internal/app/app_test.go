package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/bachata-chat/bachata/libs/grpcx"
	"github.com/bachata-chat/bachata/libs/natsx"
	"github.com/bachata-chat/bachata/libs/testkit"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	deliveryv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/delivery/v1"
	eventsv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/events/v1"
	"github.com/bachata-chat/bachata/services/delivery/internal/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitFor = 10 * time.Second

var subjects = natsx.Subjects{Prefix: "apptest"}

var (
	alice = &commonv1.DeviceRef{User: "@alice@localhost", Device: "phone"}
	bob   = &commonv1.DeviceRef{User: "@bob@localhost", Device: "laptop"}
)

// service is a delivery App on real Redis and NATS, with a gRPC client.
type service struct {
	app    *App
	nats   *testkit.NATS
	client deliveryv1.DeliveryServiceClient
	conn   *grpc.ClientConn
	http   *http.Client
	stop   func() error
}

// starter starts a service on the Redis a test runs against.
type starter func(t *testing.T, extra ...string) *service

// startService starts a service on a redis-server of its own.
func startService(t *testing.T, extra ...string) *service {
	t.Helper()
	r := testkit.StartRedis(t, testkit.RedisOptions{})
	return startServiceOn(t, r.URL(), "apptest", extra...)
}

func startServiceOn(t *testing.T, redisURL, redisPrefix string, extra ...string) *service {
	t.Helper()
	n := testkit.StartNATS(t)
	cfg, _, err := config.Load(append([]string{
		"-grpc-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0",
		"-redis-url", redisURL, "-nats-url", n.URL(),
		"-nats-prefix", subjects.Prefix, "-redis-prefix", redisPrefix, "-shutdown-timeout", "5s",
		"-expire-every", "50ms",
	}, extra...), func(string) string { return "" })
	require.NoError(t, err)
	a, err := New(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	cc, err := grpcx.Dial(a.GRPCAddr().String(), grpc.WithDisableRetry())
	require.NoError(t, err)
	s := &service{
		app: a, nats: n,
		client: deliveryv1.NewDeliveryServiceClient(cc),
		conn:   cc,
		http:   &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second},
	}
	stopped := false
	s.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		_ = cc.Close()
		return <-done
	}
	t.Cleanup(func() { require.NoError(t, s.stop()) })
	require.Eventually(t, func() bool { return s.status("/readyz") == http.StatusOK }, waitFor, 10*time.Millisecond)
	return s
}

func (s *service) status(path string) int {
	resp, err := s.http.Get("http://" + s.app.HTTPAddr().String() + path)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// gatewayInbox subscribes to what delivery publishes for one gateway.
func gatewayInbox(t *testing.T, n *testkit.NATS, gatewayID string) chan *eventsv1.Delivery {
	t.Helper()
	ch := make(chan *eventsv1.Delivery, 64)
	nc := n.Conn()
	sub, err := nc.Subscribe(subjects.GatewayDeliveries(gatewayID), func(m *nats.Msg) {
		var b eventsv1.DeliveryBatch
		if err := proto.Unmarshal(m.Data, &b); err != nil {
			t.Errorf("bad batch: %v", err)
			return
		}
		for _, d := range b.GetDeliveries() {
			ch <- d
		}
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return ch
}

func next(t *testing.T, ch chan *eventsv1.Delivery) *eventsv1.Delivery {
	t.Helper()
	select {
	case d := <-ch:
		return d
	case <-time.After(waitFor):
		t.Fatal("no delivery published")
		return nil
	}
}

func none(t *testing.T, ch chan *eventsv1.Delivery) {
	t.Helper()
	select {
	case d := <-ch:
		t.Fatalf("unexpected delivery %v", d)
	case <-time.After(200 * time.Millisecond):
	}
}

func directTo(id string, user string) *deliveryv1.EnqueueRequest {
	return &deliveryv1.EnqueueRequest{
		Message:    &commonv1.Message{Id: id, Type: "text", From: alice.GetUser(), Dest: user, Data: []byte(`{"text":"hi"}`)},
		Sender:     alice,
		Recipients: []*deliveryv1.Recipient{{User: user}},
		Receipt:    true,
	}
}

func TestDeliveryGoesOnlyToTheHoldingGatewayAndReceiptToTheSender(t *testing.T) {
	testDeliveryGoesOnlyToTheHoldingGatewayAndReceiptToTheSender(t, startService)
}

func testDeliveryGoesOnlyToTheHoldingGatewayAndReceiptToTheSender(t *testing.T, startService starter) {
	s := startService(t)
	ctx := t.Context()
	gw1, gw2 := gatewayInbox(t, s.nats, "gw-1"), gatewayInbox(t, s.nats, "gw-2")
	_, err := s.client.Attach(ctx, &deliveryv1.AttachRequest{Device: alice, GatewayId: "gw-1", ConnectionId: "a1"})
	require.NoError(t, err)
	_, err = s.client.Attach(ctx, &deliveryv1.AttachRequest{Device: bob, GatewayId: "gw-2", ConnectionId: "b1"})
	require.NoError(t, err)

	resp, err := s.client.Enqueue(ctx, directTo("m1", bob.GetUser()))
	require.NoError(t, err)
	require.False(t, resp.GetDuplicate())
	require.EqualValues(t, 1, resp.GetDevices())

	d := next(t, gw2)
	require.Equal(t, "m1", d.GetMessage().GetId())
	require.Equal(t, "b1", d.GetConnectionId())
	require.EqualValues(t, 1, d.GetAttempt())
	none(t, gw1)

	ack, err := s.client.Ack(ctx, &deliveryv1.AckRequest{Device: bob, MessageIds: []string{"m1"}})
	require.NoError(t, err)
	require.EqualValues(t, 1, ack.GetAcked())
	r := next(t, gw1)
	require.EqualValues(t, 300, r.GetReceipt().GetType())
	require.Equal(t, "m1", r.GetReceipt().GetMessageId())
	require.Equal(t, "a1", r.GetConnectionId())
	none(t, gw2)

	// The gateway confirms the written receipt; it is not sent again.
	_, err = s.client.Ack(ctx, &deliveryv1.AckRequest{Device: alice, ReceiptIds: []string{"m1"}})
	require.NoError(t, err)
	_, err = s.client.Attach(ctx, &deliveryv1.AttachRequest{Device: alice, GatewayId: "gw-1", ConnectionId: "a2"})
	require.NoError(t, err)
	none(t, gw1)
}

func TestGatewayDownPutsInFlightBackForTheNextConnection(t *testing.T) {
	testGatewayDownPutsInFlightBackForTheNextConnection(t, startService)
}

func testGatewayDownPutsInFlightBackForTheNextConnection(t *testing.T, startService starter) {
	s := startService(t)
	ctx := t.Context()
	gw1, gw2 := gatewayInbox(t, s.nats, "gw-1"), gatewayInbox(t, s.nats, "gw-2")
	_, err := s.client.Attach(ctx, &deliveryv1.AttachRequest{Device: bob, GatewayId: "gw-1", ConnectionId: "b1"})
	require.NoError(t, err)
	_, err = s.client.Enqueue(ctx, directTo("m1", bob.GetUser()))
	require.NoError(t, err)
	next(t, gw1)

	ev, err := proto.Marshal(&eventsv1.GatewayDown{GatewayId: "gw-1", Connections: []*eventsv1.DeviceConnection{{Device: bob, ConnectionId: "b1"}}})
	require.NoError(t, err)
	nc := s.nats.Conn()
	require.NoError(t, nc.Publish(subjects.GatewayDown(), ev))
	require.NoError(t, nc.Flush())

	// Once detached, a new message waits instead of going to the dead gateway.
	require.Eventually(t, func() bool {
		_, err := s.client.Enqueue(ctx, directTo("probe-"+time.Now().String(), bob.GetUser()))
		require.NoError(t, err)
		select {
		case <-gw1:
			return false
		case <-time.After(50 * time.Millisecond):
			return true
		}
	}, waitFor, time.Millisecond)

	_, err = s.client.Attach(ctx, &deliveryv1.AttachRequest{Device: bob, GatewayId: "gw-2", ConnectionId: "b2"})
	require.NoError(t, err)
	d := next(t, gw2)
	require.Equal(t, "m1", d.GetMessage().GetId())
	require.EqualValues(t, 2, d.GetAttempt())
}

func TestBadRequestsGetInvalidArgument(t *testing.T) {
	s := startService(t)
	ctx := t.Context()
	calls := map[string]func() error{
		"enqueue without id": func() error {
			_, err := s.client.Enqueue(ctx, &deliveryv1.EnqueueRequest{Message: &commonv1.Message{Type: "text"}, Recipients: []*deliveryv1.Recipient{{User: "u"}}})
			return err
		},
		"enqueue without recipients": func() error {
			_, err := s.client.Enqueue(ctx, &deliveryv1.EnqueueRequest{Message: &commonv1.Message{Id: "x", Type: "text"}})
			return err
		},
		"attach without connection": func() error {
			_, err := s.client.Attach(ctx, &deliveryv1.AttachRequest{Device: bob, GatewayId: "gw-1"})
			return err
		},
		"ack without device": func() error {
			_, err := s.client.Ack(ctx, &deliveryv1.AckRequest{MessageIds: []string{"x"}})
			return err
		},
	}
	for name, call := range calls {
		require.Equal(t, codes.InvalidArgument, status.Code(call()), name)
	}
}

func TestShutdownEndsReadinessAndReturns(t *testing.T) {
	s := startService(t)
	require.Equal(t, http.StatusOK, s.status("/healthz"))
	require.Equal(t, http.StatusOK, s.status("/metrics"))
	require.NoError(t, s.stop())
	require.Equal(t, 0, s.status("/readyz"), "admin endpoint still answering after shutdown")
}

// subscribe collects the events published on subject.
func subscribe[T any, P interface {
	*T
	proto.Message
}](t *testing.T, n *testkit.NATS, subject string) chan P {
	t.Helper()
	ch := make(chan P, 16)
	nc := n.Conn()
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		ev := P(new(T))
		if err := proto.Unmarshal(m.Data, ev); err != nil {
			t.Errorf("bad event on %s: %v", subject, err)
			return
		}
		ch <- ev
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return ch
}

func receive[P any](t *testing.T, ch chan P) P {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(waitFor):
		t.Fatal("no event published")
		var zero P
		return zero
	}
}

func TestUndeliveredDeliveredAndDeadLetterEventsArePublished(t *testing.T) {
	testUndeliveredDeliveredAndDeadLetterEventsArePublished(t, startService)
}

func testUndeliveredDeliveredAndDeadLetterEventsArePublished(t *testing.T, startService starter) {
	s := startService(t, "-undelivered-after", "200ms", "-visibility", "200ms", "-max-attempts", "1")
	ctx := t.Context()
	undelivered := subscribe[eventsv1.MessageUndelivered](t, s.nats, subjects.MessageUndelivered())
	delivered := subscribe[eventsv1.MessageDelivered](t, s.nats, subjects.MessageDelivered())
	dead := subscribe[eventsv1.DeadLetter](t, s.nats, subjects.DeadLetter())
	gw := gatewayInbox(t, s.nats, "gw-1")

	// Bob is offline: the message is reported undelivered, then delivered
	// once he acks it.
	_, err := s.client.Enqueue(ctx, directTo("late", bob.GetUser()))
	require.NoError(t, err)
	u := receive(t, undelivered)
	require.Equal(t, bob.GetUser(), u.GetRecipient())
	require.Equal(t, "late", u.GetMessage().GetId())
	require.Equal(t, alice.GetDevice(), u.GetSender().GetDevice())
	_, err = s.client.Attach(ctx, &deliveryv1.AttachRequest{Device: bob, GatewayId: "gw-1", ConnectionId: "b1"})
	require.NoError(t, err)
	require.Equal(t, "late", next(t, gw).GetMessage().GetId())
	_, err = s.client.Ack(ctx, &deliveryv1.AckRequest{Device: bob, MessageIds: []string{"late"}})
	require.NoError(t, err)
	d := receive(t, delivered)
	require.Equal(t, "late", d.GetMessageId())
	require.Equal(t, bob.GetDevice(), d.GetDevice())

	// A message pushed once and never acked goes to the dead letters.
	_, err = s.client.Enqueue(ctx, directTo("never-acked", bob.GetUser()))
	require.NoError(t, err)
	require.Equal(t, "never-acked", next(t, gw).GetMessage().GetId())
	dl := receive(t, dead)
	require.Equal(t, eventsv1.DeadLetterReason_DEAD_LETTER_REASON_ATTEMPTS, dl.GetReason())
	require.Equal(t, "never-acked", dl.GetMessage().GetId())
	require.Equal(t, bob.GetDevice(), dl.GetDevice().GetDevice())
}

// TestOnRedisCluster runs the service's main paths against a three-master
// Redis Cluster: the shard scripts, leases and instance registry must each
// stay inside one hash slot.
func TestOnRedisCluster(t *testing.T) {
	cluster := testkit.StartRedisCluster(t, testkit.RedisClusterOptions{Masters: 3})
	for i, tc := range []struct {
		name string
		run  func(*testing.T, starter)
	}{
		{"DeliveryGoesOnlyToTheHoldingGatewayAndReceiptToTheSender", testDeliveryGoesOnlyToTheHoldingGatewayAndReceiptToTheSender},
		{"GatewayDownPutsInFlightBackForTheNextConnection", testGatewayDownPutsInFlightBackForTheNextConnection},
		{"UndeliveredDeliveredAndDeadLetterEventsArePublished", testUndeliveredDeliveredAndDeadLetterEventsArePublished},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, func(t *testing.T, extra ...string) *service {
				t.Helper()
				return startServiceOn(t, cluster.URL(), fmt.Sprintf("cluster%d", i), extra...)
			})
		})
	}
}

func TestPushReachesOnlyAttachedDevicesAndStoresNothing(t *testing.T) {
	s := startService(t)
	ctx := t.Context()
	gw := gatewayInbox(t, s.nats, "gw-1")
	_, err := s.client.Attach(ctx, &deliveryv1.AttachRequest{Device: bob, GatewayId: "gw-1", ConnectionId: "b1"})
	require.NoError(t, err)
	typing := &deliveryv1.PushRequest{
		Message:    &commonv1.Message{Id: "t1", Type: "typing", From: alice.GetUser(), Dest: bob.GetUser()},
		Recipients: []*deliveryv1.Recipient{{User: bob.GetUser()}},
	}
	resp, err := s.client.Push(ctx, typing)
	require.NoError(t, err)
	require.EqualValues(t, 1, resp.GetDevices())
	require.Equal(t, "t1", next(t, gw).GetMessage().GetId())

	_, err = s.client.Detach(ctx, &deliveryv1.DetachRequest{Device: bob, ConnectionId: "b1"})
	require.NoError(t, err)
	resp, err = s.client.Push(ctx, typing)
	require.NoError(t, err)
	require.Zero(t, resp.GetDevices())
	_, err = s.client.Attach(ctx, &deliveryv1.AttachRequest{Device: bob, GatewayId: "gw-1", ConnectionId: "b2"})
	require.NoError(t, err)
	none(t, gw)

	_, err = s.client.Push(ctx, &deliveryv1.PushRequest{Message: typing.GetMessage()})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
}

func TestRoomMembershipAndFanOutOverGRPC(t *testing.T) {
	s := startService(t)
	ctx := t.Context()
	groups := deliveryv1.NewGroupServiceClient(s.conn)
	gw := gatewayInbox(t, s.nats, "gw-1")
	const room = "!general@localhost"
	for _, u := range []string{alice.GetUser(), bob.GetUser()} {
		resp, err := groups.AddMember(ctx, &deliveryv1.AddMemberRequest{Room: room, User: u})
		require.NoError(t, err)
		require.True(t, resp.GetAdded())
	}
	check, err := groups.CheckMember(ctx, &deliveryv1.CheckMemberRequest{Room: room, User: bob.GetUser()})
	require.NoError(t, err)
	require.True(t, check.GetRoomExists() && check.GetMember())
	_, err = groups.AddMember(ctx, &deliveryv1.AddMemberRequest{Room: "general", User: bob.GetUser()})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "a room without its sigil")

	_, err = s.client.Attach(ctx, &deliveryv1.AttachRequest{Device: bob, GatewayId: "gw-1", ConnectionId: "b1"})
	require.NoError(t, err)
	resp, err := s.client.Enqueue(ctx, &deliveryv1.EnqueueRequest{
		Message:    &commonv1.Message{Id: "g1", Type: "group", From: alice.GetUser(), Dest: room},
		Sender:     alice,
		Recipients: []*deliveryv1.Recipient{{Room: room, ExcludeDevice: alice.GetDevice()}},
		Receipt:    true,
	})
	require.NoError(t, err)
	require.False(t, resp.GetDuplicate())
	require.EqualValues(t, 1, resp.GetDevices(), "bob's device; alice has no other device")
	require.Equal(t, "g1", next(t, gw).GetMessage().GetId())

	_, err = s.client.Enqueue(ctx, &deliveryv1.EnqueueRequest{
		Message:    &commonv1.Message{Id: "g2", Type: "group"},
		Recipients: []*deliveryv1.Recipient{{Room: room, User: bob.GetUser()}},
	})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "a recipient with both user and room")
}
