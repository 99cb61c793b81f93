// Package testkit starts the real servers Bachata's tests run against: a
// redis-server process on a free loopback port with its own data directory,
// and an embedded NATS server with JetStream. Tests can kill and restart
// both, which is how the suite proves it loses nothing when they fail.
package testkit
