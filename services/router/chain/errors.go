package chain

import "errors"

// ErrUnavailable marks a route error after which a resend can succeed, like
// a dependency that is down. The router answers it with gRPC Unavailable,
// which the gateway turns into a retryable error for the client; any other
// route error is answered Internal.
var ErrUnavailable = errors.New("route dependency unavailable")

// ErrBadDecision means a route returned a decision that cannot be carried
// out, like Deliver with no recipients: a bug in that route.
var ErrBadDecision = errors.New("route returned an invalid decision")

// ErrBadRoute means a route cannot join a chain: it is nil, has no name, or
// has the name of a route already in the chain.
var ErrBadRoute = errors.New("invalid route")
