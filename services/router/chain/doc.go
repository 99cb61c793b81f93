// Package chain is the router's ordered route chain, the Go form of the
// seeds' messages center: every data message is offered to the routes in the
// order they were added, and the first route that does not pass decides what
// happens to it.
//
// A route's Process returns one Decision (the seeds' BaseRoute.process
// return values, made explicit):
//
//   - Pass: not mine; offer the message to the next route (the seeds' None).
//   - Reply: the chain ends and the route answered the sender itself with
//     zero or more data messages; nothing is queued (the seeds' True).
//   - Reject: the chain ends and the sender gets a Protocol Core ":error"
//     reply with a code from libs/protocol's table.
//   - Deliver: the chain ends and the message is handed to the delivery
//     service for the returned recipients (the seeds' channels).
//
// A message no route claims is rejected with the "unknown type" code, as
// Protocol Core asks ("type isn't implemented in the server"); it is never
// dropped silently.
//
// A route may also implement PostProcessor (the seeds' post_process): it is
// called after the delivery service durably queued what the route decided,
// for hooks such as "notify through another channel if not delivered".
//
// # Writing a custom route
//
// A route is any type with Name and Process. Process must be safe for
// concurrent use, must not modify the request, and should pass on every
// type it does not own so that routes compose:
//
//	type Echo struct{}
//
//	func (Echo) Name() string { return "echo" }
//
//	func (Echo) Process(_ context.Context, req *chain.Request) (chain.Decision, error) {
//		if req.Message.GetType() != "echo" {
//			return chain.Pass(), nil
//		}
//		reply := &commonv1.Message{Id: req.Message.GetId(), Type: "echo", TimeMs: req.Message.GetTimeMs(), Data: req.Message.GetData()}
//		return chain.Reply(reply), nil
//	}
//
// and is added where the router is wired, before or after the built-in
// routes depending on which should see a type first:
//
//	c, err := chain.New(chain.NewHandshake(), Echo{}, chain.NewDirect(serverName))
//
// Return an error from Process only when the route could not decide (a
// dependency failed); the message is then not accepted and the sender may
// resend it. Wrap ErrUnavailable when a resend can succeed later. Mistakes
// in the message itself are a Reject, never an error.
package chain
