package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	eventsv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/events/v1"
)

// Options configure a Store.
type Options struct {
	// Prefix starts every key.
	Prefix string
	// DedupeTTL is how long an accepted (sender, id) is remembered per
	// recipient, so a resend within it is not delivered twice.
	DedupeTTL time.Duration
	// Window is how many entries a device may have in flight at once.
	Window int
}

// Store runs the queue operations on Redis.
type Store struct {
	rdb  redis.Scripter
	opts Options
}

// New returns a Store over rdb.
func New(rdb redis.Scripter, opts Options) (*Store, error) {
	switch {
	case opts.Prefix == "" || strings.ContainsAny(opts.Prefix, "{}"):
		return nil, fmt.Errorf("queue: prefix %q: want non-empty, without braces", opts.Prefix)
	case opts.DedupeTTL < time.Second:
		return nil, fmt.Errorf("queue: dedupe ttl %s: want at least 1s", opts.DedupeTTL)
	case opts.Window < 1:
		return nil, fmt.Errorf("queue: window %d: want at least 1", opts.Window)
	}
	return &Store{rdb: rdb, opts: opts}, nil
}

// base is the key prefix of one user's keys; the braces make Redis Cluster
// hash only the user, so all of them share a slot.
func (s *Store) base(user string) string {
	return s.opts.Prefix + ":{" + user + "}:"
}

func (s *Store) devicesKey(user string) string { return s.base(user) + "devs" }

// Recipient is one user a message goes to.
type Recipient struct {
	User string
	// ExcludeDevice is left out of the user's devices: the sending device
	// when the sender's own devices get a copy.
	ExcludeDevice string
	// Copy marks the sender's own devices: a copy waits for no device and
	// never produces a receipt.
	Copy bool
	// Receipt asks for a 300 to the sender when the first device acks.
	Receipt bool
}

// Delivery is one entry pushed to a device's connection.
type Delivery struct {
	Device       *commonv1.DeviceRef
	GatewayID    string
	ConnectionID string
	Attempt      int
	// Message is set for a message, ReceiptType and MessageID for a receipt.
	Message     *commonv1.Message
	ReceiptType int32
	MessageID   string
}

// Event is the delivery as the gateway receives it.
func (d Delivery) Event() *eventsv1.Delivery {
	ev := &eventsv1.Delivery{
		Device:       d.Device,
		ConnectionId: d.ConnectionID,
		Attempt:      int32(min(d.Attempt, 1<<30)), //nolint:gosec // clamped
	}
	if d.Message != nil {
		ev.Item = &eventsv1.Delivery_Message{Message: d.Message}
	} else {
		ev.Item = &eventsv1.Delivery_Receipt{Receipt: &eventsv1.Receipt{Type: d.ReceiptType, MessageId: d.MessageID}}
	}
	return ev
}

// EnqueueResult says what an Enqueue did for one recipient.
type EnqueueResult struct {
	// Duplicate is true when this (sender, id) was already accepted for the
	// recipient; nothing was queued again.
	Duplicate bool
	// Devices is how many device queues got the message; 0 with Duplicate
	// false means it waits for the user's first device.
	Devices int
	// Deliveries can go out now.
	Deliveries []Delivery
}

// Enqueue queues msg for every device of r.User. When it returns without
// error, Redis has accepted the message for all of them.
func (s *Store) Enqueue(ctx context.Context, msg *commonv1.Message, sender *commonv1.DeviceRef, r Recipient) (EnqueueResult, error) {
	body, err := proto.Marshal(msg)
	if err != nil {
		return EnqueueResult{}, fmt.Errorf("queue: encode message: %w", err)
	}
	res, err := enqueueScript.Run(ctx, s.rdb, []string{s.devicesKey(r.User)},
		s.base(r.User), sender.GetUser()+":"+msg.GetId(), int64(s.opts.DedupeTTL/time.Second), s.opts.Window,
		msg.GetId(), body, sender.GetUser(), sender.GetDevice(), flag(r.Receipt), r.ExcludeDevice, flag(r.Copy),
	).Slice()
	if err != nil {
		return EnqueueResult{}, fmt.Errorf("queue: enqueue for %s: %w", r.User, err)
	}
	if len(res) != 3 {
		return EnqueueResult{}, errReply("enqueue", res)
	}
	ds, err := s.deliveries(r.User, res[2])
	if err != nil {
		return EnqueueResult{}, err
	}
	return EnqueueResult{Duplicate: asInt(res[0]) == 1, Devices: asInt(res[1]), Deliveries: ds}, nil
}

// AttachResult says what an Attach released.
type AttachResult struct {
	// Queued is how many entries waited for the device, in flight before
	// included.
	Queued int
	// Deliveries go out now, up to the window.
	Deliveries []Delivery
}

// Attach binds the device to a gateway connection and releases its queue,
// what was in flight on an earlier connection first.
func (s *Store) Attach(ctx context.Context, device *commonv1.DeviceRef, gatewayID, connectionID string) (AttachResult, error) {
	user := device.GetUser()
	res, err := attachScript.Run(ctx, s.rdb, []string{s.devicesKey(user)},
		s.base(user), device.GetDevice(), gatewayID, connectionID, s.opts.Window).Slice()
	if err != nil {
		return AttachResult{}, fmt.Errorf("queue: attach %s/%s: %w", user, device.GetDevice(), err)
	}
	if len(res) != 2 {
		return AttachResult{}, errReply("attach", res)
	}
	ds, err := s.deliveries(user, res[1])
	if err != nil {
		return AttachResult{}, err
	}
	return AttachResult{Queued: asInt(res[0]), Deliveries: ds}, nil
}

// Detach unbinds the device when connectionID is still its connection, and
// puts what was in flight back at the head of its queue. A stale detach (the
// device already reconnected elsewhere) changes nothing.
func (s *Store) Detach(ctx context.Context, device *commonv1.DeviceRef, connectionID string) error {
	user := device.GetUser()
	if err := detachScript.Run(ctx, s.rdb, []string{s.devicesKey(user)},
		s.base(user), device.GetDevice(), connectionID).Err(); err != nil {
		return fmt.Errorf("queue: detach %s/%s: %w", user, device.GetDevice(), err)
	}
	return nil
}

// Receipt names a sender device to notify that its message reached the
// recipient.
type Receipt struct {
	To        *commonv1.DeviceRef
	MessageID string
}

// AckResult says what an ack removed and released.
type AckResult struct {
	Acked      int
	Receipts   []Receipt
	Deliveries []Delivery
}

// Ack removes the device's messages with these ids; the first device of a
// user to ack a message that asked for a receipt yields a Receipt.
func (s *Store) Ack(ctx context.Context, device *commonv1.DeviceRef, ids []string) (AckResult, error) {
	return s.ack(ctx, device, "m", ids)
}

// AckReceipts removes the device's receipts for these message ids, once the
// gateway has written them to the socket.
func (s *Store) AckReceipts(ctx context.Context, device *commonv1.DeviceRef, ids []string) (AckResult, error) {
	return s.ack(ctx, device, "r", ids)
}

func (s *Store) ack(ctx context.Context, device *commonv1.DeviceRef, kind string, ids []string) (AckResult, error) {
	user := device.GetUser()
	args := make([]any, 0, 4+len(ids))
	args = append(args, s.base(user), device.GetDevice(), s.opts.Window, kind)
	for _, id := range ids {
		args = append(args, id)
	}
	res, err := ackScript.Run(ctx, s.rdb, []string{s.devicesKey(user)}, args...).Slice()
	if err != nil {
		return AckResult{}, fmt.Errorf("queue: ack %s/%s: %w", user, device.GetDevice(), err)
	}
	if len(res) != 3 {
		return AckResult{}, errReply("ack", res)
	}
	out := AckResult{Acked: asInt(res[0])}
	rs, _ := res[1].([]any)
	for _, r := range rs {
		t, ok := r.([]any)
		if !ok || len(t) != 3 {
			return AckResult{}, errReply("ack receipt", res)
		}
		out.Receipts = append(out.Receipts, Receipt{
			To:        &commonv1.DeviceRef{User: asString(t[0]), Device: asString(t[1])},
			MessageID: asString(t[2]),
		})
	}
	if out.Deliveries, err = s.deliveries(user, res[2]); err != nil {
		return AckResult{}, err
	}
	return out, nil
}

// PushReceipt queues a receipt of the given transport type for the device
// that sent message id, and returns what can go out now.
func (s *Store) PushReceipt(ctx context.Context, to *commonv1.DeviceRef, id string, receiptType int32) ([]Delivery, error) {
	user := to.GetUser()
	entry := "r|" + strconv.Itoa(int(receiptType)) + "|" + id
	res, err := pushReceiptScript.Run(ctx, s.rdb, []string{s.devicesKey(user)},
		s.base(user), to.GetDevice(), s.opts.Window, entry).Slice()
	if err != nil {
		return nil, fmt.Errorf("queue: receipt for %s/%s: %w", user, to.GetDevice(), err)
	}
	if len(res) != 1 {
		return nil, errReply("receipt", res)
	}
	return s.deliveries(user, res[0])
}

// deliveries decodes the (device, gateway, connection, attempt, entry,
// body) tuples the scripts return.
func (s *Store) deliveries(user string, v any) ([]Delivery, error) {
	rows, _ := v.([]any)
	out := make([]Delivery, 0, len(rows))
	for _, r := range rows {
		t, ok := r.([]any)
		if !ok || len(t) != 6 {
			return nil, errReply("delivery", rows)
		}
		d := Delivery{
			Device:       &commonv1.DeviceRef{User: user, Device: asString(t[0])},
			GatewayID:    asString(t[1]),
			ConnectionID: asString(t[2]),
			Attempt:      asInt(t[3]),
		}
		kind, rest, _ := strings.Cut(asString(t[4]), "|")
		mid, id, ok := strings.Cut(rest, "|")
		if !ok {
			return nil, errReply("entry", t[4])
		}
		switch kind {
		case "m":
			var msg commonv1.Message
			if err := proto.Unmarshal([]byte(asString(t[5])), &msg); err != nil {
				return nil, fmt.Errorf("queue: decode message %s: %w", id, err)
			}
			d.Message = &msg
		case "r":
			typ, err := strconv.Atoi(mid)
			if err != nil {
				return nil, errReply("receipt entry", t[4])
			}
			d.ReceiptType, d.MessageID = int32(typ), id //nolint:gosec // written by PushReceipt from an int32
		default:
			return nil, errReply("entry", t[4])
		}
		out = append(out, d)
	}
	return out, nil
}

var errBadReply = errors.New("queue: unexpected reply from Redis script")

func errReply(what string, v any) error {
	return fmt.Errorf("%w: %s: %v", errBadReply, what, v)
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func asInt(v any) int {
	n, _ := v.(int64)
	return int(n)
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}
