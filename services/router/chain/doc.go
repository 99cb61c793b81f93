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
// To run it, a custom router binary registers a factory for it and runs
// the router (package routerd; examples/profanity-router is a complete
// one), and the routes file places it before or after the built-in routes,
// depending on which should see a type first:
//
//	reg := chain.NewRegistry()
//	_ = reg.Register("echo", func(chain.Deps, json.RawMessage) (chain.Route, error) { return Echo{}, nil })
//	err := routerd.Run(ctx, os.Args, os.Getenv, os.Stderr, reg)
//
// with BACHATA_ROUTES_FILE holding
// {"routes":[{"route":"handshake"},{"route":"echo"},{"route":"direct"}]}.
// Tests build chains directly: chain.New(chain.NewHandshake(), Echo{}).
//
// Return an error from Process only when the route could not decide (a
// dependency failed); the message is then not accepted and the sender may
// resend it. Wrap ErrUnavailable when a resend can succeed later. Mistakes
// in the message itself are a Reject, never an error.
//
// # Writing a route hook
//
// A route in another language, or another process, is a gRPC server of
// bachata.hook.v1.RouteHookService (proto/bachata/hook/v1/hook.proto)
// listed in the routes file as a "hook" route, which Hook turns into a
// Route:
//
//	{"route": "hook", "options": {"name": "polls", "target": "polls:9090",
//	  "types": ["poll"], "timeout": "200ms", "failure": "closed"}}
//
// Its Process gets the message, with from and time stamped, and the sending
// device (none for a system message), and answers one decision: pass,
// reply, reject (a code in 10000-19999 or from libs/protocol's table) or
// deliver (user or room recipients), as above. List the types it owns so
// other messages skip the call, answer well within the timeout, and expect
// a message more than once (the router retries, senders resend). A call
// that fails, times out or answers a decision the router cannot carry out
// is logged; with "failure": "closed" (the default) the message is then not
// accepted and the sender resends it, with "open" the hook is skipped as if
// it passed. The router closes the hook's connection when it stops
// (Chain.Close).
package chain
