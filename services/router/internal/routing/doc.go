// Package routing is the router's RouterService: it takes one data message
// from a gateway (or the admin API), checks it, verifies its signature,
// stamps the sender and time, runs the route chain and carries out what the
// chain decided — queuing through the delivery service, replying, or
// rejecting.
//
// Two kinds of failure are kept apart. A mistake in the message (a missing
// id, a bad dest, a wrong signature, an unknown type) is the sender's: it is
// answered OUTCOME_REJECTED with an error code from libs/protocol, and the
// RPC succeeds. A failure of the suite (delivery down, a route's dependency
// down, a malformed request from a gateway) is an RPC error with a gRPC
// status; the message was not accepted, and Unavailable tells the gateway
// the client may resend it. Statuses are chosen once, in status.go.
package routing
