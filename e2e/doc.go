// Package e2e proves the client contract end to end: it builds the four
// service binaries, runs them as processes against a real redis-server and
// an embedded NATS server, and talks to the gateways over real WebSockets.
// Tests here kill and restart those processes to show nothing accepted is
// lost.
package e2e
