package chain

import (
	"github.com/bachata-chat/bachata/libs/protocol"
	commonv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/common/v1"
	deliveryv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/delivery/v1"
)

// Kind is what a Decision tells the chain to do.
type Kind int

// The decisions a route can take; see the package documentation.
const (
	// KindPass hands the message to the next route.
	KindPass Kind = iota
	// KindReply ends the chain; the route answered the sender itself.
	KindReply
	// KindReject ends the chain with an ":error" reply to the sender.
	KindReject
	// KindDeliver ends the chain; the message goes to the delivery service.
	KindDeliver
	// KindSend ends the chain; the message goes to the recipients' devices
	// online now and is not stored (ephemeral).
	KindSend
)

// String is the kind's metric label.
func (k Kind) String() string {
	switch k {
	case KindPass:
		return "pass"
	case KindReply:
		return "reply"
	case KindReject:
		return "reject"
	case KindDeliver:
		return "deliver"
	case KindSend:
		return "send"
	default:
		return "unknown"
	}
}

// Decision is a route's verdict on one message. The zero Decision is Pass.
// Build one with Pass, Reply, Reject or Deliver.
type Decision struct {
	kind      Kind
	replies   []*commonv1.Message
	rejection *protocol.Error
	delivery  Delivery
}

// Delivery is who receives a message a route decided to deliver.
type Delivery struct {
	// Recipients are the users, or rooms, to fan out to, each with the
	// device to leave out and whether it is the sender's own copy.
	Recipients []*deliveryv1.Recipient
	// Receipt asks for a 300 to the sender when the first device of a
	// recipient that is not a copy acks.
	Receipt bool
}

// Pass hands the message to the next route: the route does not own it.
func Pass() Decision { return Decision{kind: KindPass} }

// Reply ends the chain with data messages for the sending connection, in
// order; nothing is queued. With no replies the message is simply consumed,
// like the seeds' "return True".
func Reply(replies ...*commonv1.Message) Decision {
	return Decision{kind: KindReply, replies: replies}
}

// Reject ends the chain with an ":error" reply to the sender carrying e's
// code (from the libs/protocol table, or 10000-19999 for custom routes),
// text and payload. Build e with protocol.NewError or protocol.Errorf; its
// text reaches the sender, so it holds nothing but what the sender may see.
func Reject(e *protocol.Error) Decision {
	return Decision{kind: KindReject, rejection: e}
}

// Deliver ends the chain and hands the message to the delivery service for
// the given recipients.
func Deliver(d Delivery) Decision { return Decision{kind: KindDeliver, delivery: d} }

// Send ends the chain and sends the message to the devices of d's
// recipients that are online now, without storing it: no 100, no 300, no
// redelivery (typing notifications and the like). d.Receipt is ignored.
func Send(d Delivery) Decision { return Decision{kind: KindSend, delivery: d} }

// Kind is what the decision tells the chain to do.
func (d Decision) Kind() Kind { return d.kind }

// Replies are the messages of a Reply decision.
func (d Decision) Replies() []*commonv1.Message { return d.replies }

// Rejection is the error of a Reject decision, nil otherwise.
func (d Decision) Rejection() *protocol.Error { return d.rejection }

// Delivery is the recipients of a Deliver decision.
func (d Decision) Delivery() Delivery { return d.delivery }

// check reports a decision no route should build, so a buggy route fails
// loudly in its own name instead of queuing a message for nobody.
func (d Decision) check() error {
	switch d.kind {
	case KindPass:
		return nil
	case KindReply:
		for _, r := range d.replies {
			if r == nil || r.GetType() == "" {
				return ErrBadDecision
			}
		}
		return nil
	case KindReject:
		if d.rejection == nil || d.rejection.Code == 0 {
			return ErrBadDecision
		}
		return nil
	case KindDeliver, KindSend:
		if len(d.delivery.Recipients) == 0 {
			return ErrBadDecision
		}
		for _, r := range d.delivery.Recipients {
			// Each recipient names a user or a room, never both.
			if (r.GetUser() == "") == (r.GetRoom() == "") {
				return ErrBadDecision
			}
		}
		return nil
	default:
		return ErrBadDecision
	}
}
