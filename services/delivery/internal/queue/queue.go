package queue

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/bachata-chat/bachata/libs/obs"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	eventsv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/events/v1"
)

// Options configure a Store. Zero limits are off.
type Options struct {
	// Prefix starts every key.
	Prefix string
	// Shards is how many shards the devices are hashed to. It is part of
	// the data layout: every instance must use the same value, and changing
	// it strands queued messages in their old shards.
	Shards int
	// DedupeTTL is how long an accepted (sender, id) is remembered per
	// recipient, so a resend within it is not delivered twice.
	DedupeTTL time.Duration
	// Window is how many entries a device may have in flight at once.
	Window int
	// Visibility is how long an entry stays in flight without an ack before
	// it is delivered again; the wait doubles with each attempt, up to 64
	// times Visibility.
	Visibility time.Duration
	// MaxAttempts is how often an entry is delivered before it goes to the
	// dead-letter list.
	MaxAttempts int
	// MaxQueueLength bounds each device queue; the oldest entries beyond it
	// go to the dead-letter list.
	MaxQueueLength int
	// MaxAge bounds how long an entry waits for its ack; older ones go to
	// the dead-letter list.
	MaxAge time.Duration
	// UndeliveredAfter is the delay after which a message no device of its
	// recipient acked is reported undelivered.
	UndeliveredAfter time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Store runs the queue operations on Redis.
type Store struct {
	rdb  redis.Cmdable
	opts Options
}

// New returns a Store over rdb.
func New(rdb redis.Cmdable, opts Options) (*Store, error) {
	switch {
	case opts.Prefix == "" || strings.ContainsAny(opts.Prefix, "{}"):
		return nil, fmt.Errorf("queue: prefix %q: want non-empty, without braces", opts.Prefix)
	case opts.Shards < 1:
		return nil, fmt.Errorf("queue: shards %d: want at least 1", opts.Shards)
	case opts.DedupeTTL < time.Second:
		return nil, fmt.Errorf("queue: dedupe ttl %s: want at least 1s", opts.DedupeTTL)
	case opts.Window < 1:
		return nil, fmt.Errorf("queue: window %d: want at least 1", opts.Window)
	case opts.Visibility < time.Millisecond:
		return nil, fmt.Errorf("queue: visibility %s: want at least 1ms", opts.Visibility)
	case opts.MaxAttempts < 1:
		return nil, fmt.Errorf("queue: max attempts %d: want at least 1", opts.MaxAttempts)
	case opts.MaxQueueLength < 0 || opts.MaxAge < 0 || opts.UndeliveredAfter < 0:
		return nil, errors.New("queue: limits must not be negative")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{rdb: rdb, opts: opts}, nil
}

// Shards is the number of shards.
func (s *Store) Shards() int { return s.opts.Shards }

// ShardOf is the shard holding every queue of user.
func (s *Store) ShardOf(user string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(user))
	return int(h.Sum32() % uint32(s.opts.Shards)) //nolint:gosec // Shards is positive and small
}

// base is the key prefix of one shard's keys; the braces make Redis
// Cluster hash only the shard number, so all of them share a slot.
func (s *Store) base(shard int) string {
	return s.opts.Prefix + ":{" + strconv.Itoa(shard) + "}:"
}

// route is the key a script call is routed by.
func (s *Store) route(shard int) []string { return []string{s.base(shard) + "ready"} }

func (s *Store) now() int64 { return s.opts.Now().UnixMilli() }

func ms(d time.Duration) int64 { return d.Milliseconds() }

// Recipient is one user a message goes to.
type Recipient struct {
	User string
	// ExcludeDevice is left out of the user's devices: the sending device
	// when the sender's own devices get a copy.
	ExcludeDevice string
	// Copy marks the sender's own devices: a copy waits for no device,
	// never produces a receipt and is never reported undelivered.
	Copy bool
	// Receipt asks for a 300 to the sender when the first device acks.
	Receipt bool
}

// EnqueueResult says what an Enqueue did for one recipient.
type EnqueueResult struct {
	// Duplicate is true when this (sender, id) was already accepted for the
	// recipient; nothing was queued again.
	Duplicate bool
	// Devices is how many device queues got the message; 0 with Duplicate
	// false means it waits for the user's first device (or, for a copy,
	// that the sender has no other device).
	Devices int
	// Dead are entries the queue length limit pushed out.
	Dead []DeadLetter
}

// Enqueue queues msg for every device of r.User and marks the attached ones
// ready for their shard's owner to push. When it returns without error,
// Redis has accepted the message for all of them.
func (s *Store) Enqueue(ctx context.Context, msg *commonv1.Message, sender *commonv1.DeviceRef, r Recipient) (EnqueueResult, error) {
	body, err := proto.Marshal(msg)
	if err != nil {
		return EnqueueResult{}, fmt.Errorf("queue: encode message: %w", err)
	}
	shard := s.ShardOf(r.User)
	res, err := enqueueScript.Run(ctx, s.rdb, s.route(shard),
		s.base(shard), r.User, sender.GetUser()+":"+msg.GetId(), int64(s.opts.DedupeTTL/time.Second),
		msg.GetId(), body, sender.GetUser(), sender.GetDevice(), flag(r.Receipt), r.ExcludeDevice, flag(r.Copy),
		s.now(), s.opts.MaxQueueLength, ms(s.opts.MaxAge), ms(s.opts.UndeliveredAfter), msg.GetTraceParent(),
	).Slice()
	if err != nil {
		return EnqueueResult{}, fmt.Errorf("queue: enqueue for %s: %w", r.User, err)
	}
	if len(res) != 3 {
		return EnqueueResult{}, errReply("enqueue", res)
	}
	dead, err := deadLetters(res[2])
	if err != nil {
		return EnqueueResult{}, err
	}
	return EnqueueResult{Duplicate: asInt(res[0]) == 1, Devices: asInt(res[1]), Dead: dead}, nil
}

// Attach binds the device to a gateway connection and marks it ready, so
// its queue is pushed there, what was in flight on an earlier connection
// first. It returns how many entries wait for the device.
func (s *Store) Attach(ctx context.Context, device *commonv1.DeviceRef, gatewayID, connectionID string) (int, error) {
	user := device.GetUser()
	shard := s.ShardOf(user)
	n, err := attachScript.Run(ctx, s.rdb, s.route(shard),
		s.base(shard), user, device.GetDevice(), gatewayID, connectionID, s.now(), ms(s.opts.MaxAge)).Int()
	if err != nil {
		return 0, fmt.Errorf("queue: attach %s/%s: %w", user, device.GetDevice(), err)
	}
	return n, nil
}

// Detach unbinds the device when connectionID is still its connection, and
// puts what was in flight back at the head of its queue. A stale detach (the
// device already reconnected elsewhere) changes nothing.
func (s *Store) Detach(ctx context.Context, device *commonv1.DeviceRef, connectionID string) error {
	user := device.GetUser()
	shard := s.ShardOf(user)
	if err := detachScript.Run(ctx, s.rdb, s.route(shard),
		s.base(shard), user, device.GetDevice(), connectionID).Err(); err != nil {
		return fmt.Errorf("queue: detach %s/%s: %w", user, device.GetDevice(), err)
	}
	return nil
}

// ReceiptDelivered is the transport type of the receipt a sender gets when
// the first device of the recipient acked its message.
const ReceiptDelivered = 300

// Receipt names a sender device and one of its messages.
type Receipt struct {
	To        *commonv1.DeviceRef
	MessageID string
}

// AckedMessage is one message an ack removed, as its caller observes it.
type AckedMessage struct {
	ID string
	// TraceParent is the trace context stored with the message; "" when
	// its trace was not sampled.
	TraceParent string
	// Latency is the time from the message's last push to this ack; -1
	// when unknown (the ack matched a message that was back in its queue).
	Latency time.Duration
}

// AckResult says what an ack removed.
type AckResult struct {
	// Shard is the recipient's shard, whose outbox holds the receipts
	// until ReceiptQueued confirms them.
	Shard int
	Acked int
	// Receipts are the senders owed a 300: this was the first device of
	// the recipient to ack a message that asked for one.
	Receipts []Receipt
	// Delivered are messages reported undelivered earlier that a device
	// of the recipient has now acked.
	Delivered []Receipt
	// Messages are the acked messages (not receipts).
	Messages []AckedMessage
}

// Ack removes the device's messages with these ids.
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
	shard := s.ShardOf(user)
	args := make([]any, 0, 5+len(ids))
	now := s.now()
	args = append(args, s.base(shard), user, device.GetDevice(), kind, now)
	for _, id := range ids {
		args = append(args, id)
	}
	res, err := ackScript.Run(ctx, s.rdb, s.route(shard), args...).Slice()
	if err != nil {
		return AckResult{}, fmt.Errorf("queue: ack %s/%s: %w", user, device.GetDevice(), err)
	}
	if len(res) != 4 {
		return AckResult{}, errReply("ack", res)
	}
	out := AckResult{Shard: shard, Acked: asInt(res[0])}
	if out.Receipts, err = receipts(res[1]); err != nil {
		return AckResult{}, err
	}
	if out.Delivered, err = receipts(res[2]); err != nil {
		return AckResult{}, err
	}
	if out.Messages, err = s.ackedMessages(res[3], now); err != nil {
		return AckResult{}, err
	}
	return out, nil
}

// ackedMessages decodes the {id, trace context, deadline, attempt} tuples
// of the ack script. The push time is the deadline less the visibility
// timeout of that attempt (see deadline in the scripts).
func (s *Store) ackedMessages(v any, now int64) ([]AckedMessage, error) {
	rows, _ := v.([]any)
	out := make([]AckedMessage, 0, len(rows))
	for _, r := range rows {
		t, ok := r.([]any)
		if !ok || len(t) != 4 {
			return nil, errReply("acked message", rows)
		}
		m := AckedMessage{ID: asString(t[0]), TraceParent: asString(t[1]), Latency: -1}
		due, err1 := strconv.ParseFloat(asString(t[2]), 64)
		attempt, err2 := strconv.Atoi(asString(t[3]))
		if err1 == nil && err2 == nil && attempt >= 1 {
			pushed := int64(due) - ms(s.opts.Visibility)<<(min(attempt, 7)-1)
			m.Latency = time.Duration(max(now-pushed, 0)) * time.Millisecond
		}
		out = append(out, m)
	}
	return out, nil
}

func receipts(v any) ([]Receipt, error) {
	rows, _ := v.([]any)
	var out []Receipt
	for _, r := range rows {
		t, ok := r.([]any)
		if !ok || len(t) != 3 {
			return nil, errReply("receipt", rows)
		}
		out = append(out, Receipt{
			To:        &commonv1.DeviceRef{User: asString(t[0]), Device: asString(t[1])},
			MessageID: asString(t[2]),
		})
	}
	return out, nil
}

// PushReceipt queues a receipt of the given transport type for the device
// that sent message id. The span in ctx, when sampled, is stored with it:
// its push and the gateway's write join that trace.
func (s *Store) PushReceipt(ctx context.Context, to *commonv1.DeviceRef, id string, receiptType int32) error {
	user := to.GetUser()
	shard := s.ShardOf(user)
	entry := "r|" + strconv.Itoa(int(receiptType)) + "|" + id
	if err := pushReceiptScript.Run(ctx, s.rdb, s.route(shard),
		s.base(shard), user, to.GetDevice(), entry, s.now(), ms(s.opts.MaxAge), int64(s.opts.DedupeTTL/time.Second),
		obs.TraceParent(ctx)).Err(); err != nil {
		return fmt.Errorf("queue: receipt for %s/%s: %w", user, to.GetDevice(), err)
	}
	return nil
}

// ReceiptQueued clears a receipt from the outbox of the recipient's shard
// once PushReceipt queued it.
func (s *Store) ReceiptQueued(ctx context.Context, shard int, r Receipt) error {
	mb := r.To.GetUser() + "\x00" + r.To.GetDevice() + "\x00" + r.MessageID
	if err := s.rdb.ZRem(ctx, s.base(shard)+"outbox", mb).Err(); err != nil {
		return fmt.Errorf("queue: clear receipt %s: %w", r.MessageID, err)
	}
	return nil
}

// OwedReceipts lists receipts of shard's outbox older than grace: their
// ack's caller did not confirm queueing them, so the owner does it. Only
// the holder of the shard's lease may call it.
func (s *Store) OwedReceipts(ctx context.Context, shard int, token string, grace time.Duration, max int) ([]Receipt, error) {
	res, err := outboxScript.Run(ctx, s.rdb, s.route(shard),
		s.base(shard), token, s.now()-ms(grace), max).Slice()
	if err != nil {
		return nil, ownerErr("outbox", shard, err)
	}
	return receipts(res)
}

// Attached returns an ephemeral delivery of msg for each device of user
// attached now, but exclude. Nothing is stored: the caller publishes them
// and they are never pushed again.
func (s *Store) Attached(ctx context.Context, user, exclude string, msg *commonv1.Message) ([]Delivery, error) {
	shard := s.ShardOf(user)
	rows, err := attachedScript.Run(ctx, s.rdb, s.route(shard), s.base(shard), user, exclude).Slice()
	if err != nil {
		return nil, fmt.Errorf("queue: attached devices of %s: %w", user, err)
	}
	out := make([]Delivery, 0, len(rows))
	for _, r := range rows {
		t, ok := r.([]any)
		if !ok || len(t) != 3 {
			return nil, errReply("attached", rows)
		}
		out = append(out, Delivery{
			Device:       &commonv1.DeviceRef{User: user, Device: asString(t[0])},
			GatewayID:    asString(t[1]),
			ConnectionID: asString(t[2]),
			Attempt:      1,
			Entry:        Entry{Message: msg, MessageID: msg.GetId()},
		})
	}
	return out, nil
}

// Delivery is one entry pushed to a device's connection.
type Delivery struct {
	Device       *commonv1.DeviceRef
	GatewayID    string
	ConnectionID string
	Attempt      int
	Entry
}

// Event is the delivery as the gateway receives it.
func (d Delivery) Event() *eventsv1.Delivery {
	ev := &eventsv1.Delivery{
		Device:       d.Device,
		ConnectionId: d.ConnectionID,
		Attempt:      clamp32(d.Attempt),
	}
	if d.Message != nil {
		ev.Item = &eventsv1.Delivery_Message{Message: d.Message}
	} else {
		ev.Item = &eventsv1.Delivery_Receipt{Receipt: d.receipt()}
	}
	return ev
}

// DeadLetter is an entry that left its queue without an ack.
type DeadLetter struct {
	Device   *commonv1.DeviceRef
	Reason   eventsv1.DeadLetterReason
	Attempts int
	Entry
}

// Event is the dead letter as published.
func (d DeadLetter) Event() *eventsv1.DeadLetter {
	ev := &eventsv1.DeadLetter{Device: d.Device, Reason: d.Reason, Attempts: clamp32(d.Attempts)}
	if d.Message != nil {
		ev.Item = &eventsv1.DeadLetter_Message{Message: d.Message}
	} else {
		ev.Item = &eventsv1.DeadLetter_Receipt{Receipt: d.receipt()}
	}
	return ev
}

// Undelivered is a message no device of its recipient acked in time.
type Undelivered struct {
	Recipient string
	Sender    *commonv1.DeviceRef
	Message   *commonv1.Message
	Queued    time.Time
}

// Event is the report as published.
func (u Undelivered) Event() *eventsv1.MessageUndelivered {
	return &eventsv1.MessageUndelivered{Recipient: u.Recipient, Sender: u.Sender, Message: u.Message, QueuedMs: u.Queued.UnixMilli()}
}

// Pushed is what one run of a shard's owner released.
type Pushed struct {
	Deliveries  []Delivery
	Dead        []DeadLetter
	Undelivered []Undelivered
}

// ErrNotOwner means the caller's lease on the shard is gone: another
// instance owns it now.
var ErrNotOwner = errors.New("queue: shard lease not held")

// Drain pushes the devices marked ready in shard, up to max of them. Only
// the holder of the shard's lease may call it, so one instance publishes
// for a device and its order holds.
func (s *Store) Drain(ctx context.Context, shard int, token string, max int) (Pushed, error) {
	res, err := drainScript.Run(ctx, s.rdb, s.route(shard),
		s.base(shard), token, s.now(), s.opts.Window, ms(s.opts.Visibility), s.opts.MaxAttempts, max).Slice()
	if err != nil {
		return Pushed{}, ownerErr("drain", shard, err)
	}
	if len(res) != 2 {
		return Pushed{}, errReply("drain", res)
	}
	var out Pushed
	if out.Deliveries, err = deliveries(res[0]); err != nil {
		return Pushed{}, err
	}
	if out.Dead, err = deadLetters(res[1]); err != nil {
		return Pushed{}, err
	}
	return out, nil
}

// Takeover prepares a shard its caller just acquired: unless the previous
// owner released it cleanly, every in-flight entry of an attached device is
// pushed again, so nothing the previous owner failed to publish is
// overtaken by newer entries.
func (s *Store) Takeover(ctx context.Context, shard int, token string) (Pushed, error) {
	res, err := takeoverScript.Run(ctx, s.rdb, s.route(shard),
		s.base(shard), token, s.now(), ms(s.opts.Visibility)).Slice()
	if err != nil {
		return Pushed{}, ownerErr("takeover", shard, err)
	}
	if len(res) != 1 {
		return Pushed{}, errReply("takeover", res)
	}
	ds, err := deliveries(res[0])
	if err != nil {
		return Pushed{}, err
	}
	return Pushed{Deliveries: ds}, nil
}

// Expire delivers again what stayed in flight past the visibility timeout,
// moves what exhausted its attempts or outlived the maximum age to the
// dead-letter list, and reports messages undelivered past the delay; at
// most max of each per call. Only the holder of the shard's lease may call
// it.
func (s *Store) Expire(ctx context.Context, shard int, token string, max int) (Pushed, error) {
	res, err := expireScript.Run(ctx, s.rdb, s.route(shard),
		s.base(shard), token, s.now(), s.opts.Window, ms(s.opts.Visibility), s.opts.MaxAttempts, max).Slice()
	if err != nil {
		return Pushed{}, ownerErr("expire", shard, err)
	}
	if len(res) != 3 {
		return Pushed{}, errReply("expire", res)
	}
	var out Pushed
	if out.Deliveries, err = deliveries(res[0]); err != nil {
		return Pushed{}, err
	}
	if out.Dead, err = deadLetters(res[1]); err != nil {
		return Pushed{}, err
	}
	rows, _ := res[2].([]any)
	for _, r := range rows {
		t, ok := r.([]any)
		if !ok || len(t) != 5 {
			return Pushed{}, errReply("undelivered", rows)
		}
		var msg commonv1.Message
		if err := proto.Unmarshal([]byte(asString(t[3])), &msg); err != nil {
			return Pushed{}, fmt.Errorf("queue: decode undelivered message: %w", err)
		}
		queued, _ := strconv.ParseInt(asString(t[4]), 10, 64)
		out.Undelivered = append(out.Undelivered, Undelivered{
			Recipient: asString(t[0]),
			Sender:    &commonv1.DeviceRef{User: asString(t[1]), Device: asString(t[2])},
			Message:   &msg,
			Queued:    time.UnixMilli(queued),
		})
	}
	return out, nil
}

// WaitReady blocks up to timeout until a device of shard is marked ready,
// on c, which should be a client kept for blocking calls. It moves the
// device into the shard's wake list, which the next Drain takes first, so a
// crash between the two loses nothing.
func (s *Store) WaitReady(ctx context.Context, c redis.Cmdable, shard int, timeout time.Duration) (bool, error) {
	b := s.base(shard)
	err := c.BLMove(ctx, b+"ready", b+"wake", "LEFT", "RIGHT", timeout).Err()
	switch {
	case errors.Is(err, redis.Nil):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("queue: wait shard %d: %w", shard, err)
	}
	return true, nil
}

// Acquire takes or renews the lease on shard for token; false means another
// instance holds it.
func (s *Store) Acquire(ctx context.Context, shard int, token string, lease time.Duration) (bool, error) {
	n, err := acquireScript.Run(ctx, s.rdb, s.route(shard), s.base(shard), token, ms(lease)).Int()
	if err != nil {
		return false, fmt.Errorf("queue: lease shard %d: %w", shard, err)
	}
	return n == 1, nil
}

// Release gives up token's lease on shard, so another instance can take it
// at once.
func (s *Store) Release(ctx context.Context, shard int, token string) error {
	if err := releaseScript.Run(ctx, s.rdb, s.route(shard), s.base(shard), token).Err(); err != nil {
		return fmt.Errorf("queue: release shard %d: %w", shard, err)
	}
	return nil
}

// instancesKey is the registry of live delivery instances; it has a slot
// of its own.
func (s *Store) instancesKey() string { return s.opts.Prefix + ":{instances}:delivery" }

// Heartbeat records instance as alive for lease and returns how many
// instances are alive, itself included.
func (s *Store) Heartbeat(ctx context.Context, instance string, lease time.Duration) (int, error) {
	now := s.now()
	k := s.instancesKey()
	pipe := s.rdb.TxPipeline()
	pipe.ZAdd(ctx, k, redis.Z{Score: float64(now + ms(lease)), Member: instance})
	pipe.ZRemRangeByScore(ctx, k, "-inf", "("+strconv.FormatInt(now, 10))
	card := pipe.ZCard(ctx, k)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("queue: instance heartbeat: %w", err)
	}
	return int(card.Val()), nil
}

// Leave removes instance from the registry.
func (s *Store) Leave(ctx context.Context, instance string) error {
	if err := s.rdb.ZRem(ctx, s.instancesKey(), instance).Err(); err != nil {
		return fmt.Errorf("queue: leave: %w", err)
	}
	return nil
}

func ownerErr(op string, shard int, err error) error {
	if strings.HasPrefix(err.Error(), "NOTOWNER") {
		return fmt.Errorf("%s shard %d: %w", op, shard, ErrNotOwner)
	}
	return fmt.Errorf("queue: %s shard %d: %w", op, shard, err)
}

// deliveries decodes the {user, device, gateway, connection, attempt,
// entry, body} tuples the scripts return.
func deliveries(v any) ([]Delivery, error) {
	rows, _ := v.([]any)
	out := make([]Delivery, 0, len(rows))
	for _, r := range rows {
		t, ok := r.([]any)
		if !ok || len(t) != 7 {
			return nil, errReply("delivery", rows)
		}
		d := Delivery{
			Device:       &commonv1.DeviceRef{User: asString(t[0]), Device: asString(t[1])},
			GatewayID:    asString(t[2]),
			ConnectionID: asString(t[3]),
			Attempt:      asInt(t[4]),
		}
		var err error
		if d.Entry, err = decodeEntry(asString(t[5]), asString(t[6])); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// deadLetters decodes the {user, device, reason, attempts, entry, body}
// tuples the scripts return.
func deadLetters(v any) ([]DeadLetter, error) {
	rows, _ := v.([]any)
	var out []DeadLetter
	for _, r := range rows {
		t, ok := r.([]any)
		if !ok || len(t) != 6 {
			return nil, errReply("dead letter", rows)
		}
		entry, err := decodeEntry(asString(t[4]), asString(t[5]))
		if err != nil {
			return nil, err
		}
		out = append(out, DeadLetter{
			Device:   &commonv1.DeviceRef{User: asString(t[0]), Device: asString(t[1])},
			Reason:   reasons[asString(t[2])],
			Attempts: asInt(t[3]),
			Entry:    entry,
		})
	}
	return out, nil
}

var reasons = map[string]eventsv1.DeadLetterReason{
	"attempts": eventsv1.DeadLetterReason_DEAD_LETTER_REASON_ATTEMPTS,
	"length":   eventsv1.DeadLetterReason_DEAD_LETTER_REASON_QUEUE_LENGTH,
	"age":      eventsv1.DeadLetterReason_DEAD_LETTER_REASON_AGE,
}

// Entry is what a queue entry carries: a message, or a receipt for a
// message the device sent.
type Entry struct {
	// Message is set for a message.
	Message *commonv1.Message
	// ReceiptType is the transport type of a receipt, 0 for a message.
	ReceiptType int32
	// MessageID is the message's id, for both kinds.
	MessageID string
	// ReceiptTrace is a receipt's trace context, "" when none; a
	// message's is in Message.
	ReceiptTrace string
}

// TraceParent is the entry's trace context: its message's or its
// receipt's; "" when its trace was not sampled.
func (e Entry) TraceParent() string {
	if e.Message != nil {
		return e.Message.GetTraceParent()
	}
	return e.ReceiptTrace
}

func (e Entry) receipt() *eventsv1.Receipt {
	return &eventsv1.Receipt{Type: e.ReceiptType, MessageId: e.MessageID, TraceParent: e.ReceiptTrace}
}

// decodeEntry reads "m|<ref>|<id>" with its body, or "r|<type>|<id>" with
// its trace context.
func decodeEntry(entry, body string) (Entry, error) {
	kind, rest, _ := strings.Cut(entry, "|")
	mid, id, ok := strings.Cut(rest, "|")
	if !ok {
		return Entry{}, errReply("entry", entry)
	}
	switch kind {
	case "m":
		var msg commonv1.Message
		if err := proto.Unmarshal([]byte(body), &msg); err != nil {
			return Entry{}, fmt.Errorf("queue: decode message %s: %w", id, err)
		}
		return Entry{Message: &msg, MessageID: id}, nil
	case "r":
		typ, err := strconv.ParseInt(mid, 10, 32)
		if err != nil {
			return Entry{}, errReply("receipt entry", entry)
		}
		return Entry{ReceiptType: int32(typ), MessageID: id, ReceiptTrace: body}, nil
	}
	return Entry{}, errReply("entry", entry)
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

func clamp32(n int) int32 { return int32(min(n, 1<<30)) } //nolint:gosec // clamped

func asInt(v any) int {
	switch n := v.(type) {
	case int64:
		return int(n)
	case string:
		i, _ := strconv.Atoi(n)
		return i
	}
	return 0
}

func asString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	}
	return ""
}
