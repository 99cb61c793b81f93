// Package queue keeps one reliable queue per device in Redis.
//
// Each device has a queue list and an in-flight list. A message moves from
// the queue into the in-flight list (LMOVE, the BRPOPLPUSH pattern) when it
// is pushed to the device's connection, and leaves the in-flight list (LREM)
// only when the device acks it. When the device disconnects, what was in
// flight goes back to the head of the queue and is pushed again, in order,
// on its next connection. Every operation is one Lua script over the keys of
// one user, so it is atomic, and with the user in a hash tag it stays inside
// one Redis Cluster slot.
//
// Keys, with <p> the configured prefix and <u> the user's entity ID:
//
//	<p>:{<u>}:devs       SET   the user's known devices
//	<p>:{<u>}:nodev      LIST  entries sent before the user had any device;
//	                           the first device to attach takes them
//	<p>:{<u>}:q:<dev>    LIST  the device's queue, oldest first
//	<p>:{<u>}:f:<dev>    LIST  the device's in-flight entries, at most Window
//	<p>:{<u>}:a:<dev>    HASH  entry → delivery attempts so far
//	<p>:{<u>}:c:<dev>    HASH  gw, conn: the connection the device is attached to
//	<p>:{<u>}:m:<ref>    HASH  body (commonv1.Message), suser, sdev, receipt,
//	                           holders (devices still holding it), receipted
//	<p>:{<u>}:seq        STRING counter for message refs
//	<p>:{<u>}:d:<sender>:<id>  STRING dedupe mark, expires after DedupeTTL
//
// Entries are "m|<ref>|<message id>" for a message and
// "r|<transport type>|<message id>" for a receipt to a sender's device.
//
// A device registered after a message was queued does not get that message:
// only devices known at enqueue time, or the first device of a user that had
// none, receive it.
package queue
