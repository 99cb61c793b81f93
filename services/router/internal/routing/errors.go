package routing

import "errors"

// ErrBadRequest means a caller broke the RouterService contract, like a
// request without a message or a sender device with no user: a bug in the
// gateway, not a client's mistake. Answered InvalidArgument.
var ErrBadRequest = errors.New("malformed route request")

// ErrDelivery means the delivery service did not confirm an enqueue, so the
// message was not accepted; a resend completes what a partial enqueue
// started, because Enqueue is idempotent per (sender, id). Answered
// Unavailable.
var ErrDelivery = errors.New("delivery enqueue failed")

// ErrBadOptions means New was given options it cannot work with.
var ErrBadOptions = errors.New("invalid routing options")
