// Package queue keeps one reliable queue per device in Redis.
//
// Each device has a queue list and an in-flight list. An entry moves from
// the queue into the in-flight list (LMOVE, the BRPOPLPUSH pattern) when it
// is pushed to the device's connection, and leaves the in-flight list (LREM)
// only when the device acks it. When the device disconnects, what was in
// flight goes back to the head of its queue and is pushed again, in order,
// on its next connection; what stays unacked past the visibility timeout is
// pushed again, and after the maximum attempts it goes to a dead-letter
// list.
//
// Devices are hashed by user to a fixed number of shards, and every key of
// a shard carries the shard number as its hash tag, so each operation is
// one Lua script inside one Redis Cluster slot. Calls from any instance
// change the queues and mark a device ready; only the holder of the shard's
// lease (package shard) pushes: it waits on the shard's ready list with
// BLMOVE, drains it, and runs the shard's timers. One publisher per device
// keeps its order.
//
// Keys, with <p> the prefix, <n> the shard, <u> a user and <d> a device:
//
//	<p>:{<n>}:devs:<u>        SET    the user's known devices
//	<p>:{<n>}:nodev:<u>       LIST   entries sent before the user had any
//	                                 device; the first device takes them
//	<p>:{<n>}:q:<u>:<d>       LIST   the device's queue, oldest first
//	<p>:{<n>}:f:<u>:<d>       LIST   in flight: pushed, not acked (≤ window)
//	<p>:{<n>}:a:<u>:<d>       HASH   entry → pushes so far
//	<p>:{<n>}:c:<u>:<d>       HASH   gw, conn: where the device is attached
//	<p>:{<n>}:m:<ref>         HASH   a message body once per recipient user,
//	                                 its sender, receipt flags and how many
//	                                 devices still hold it
//	<p>:{<n>}:seq             STRING counter for message refs
//	<p>:{<n>}:d:<u>:<sender>:<id>  STRING dedupe mark (DedupeTTL)
//	<p>:{<n>}:rc:<u>:<d>:<entry>   STRING receipt-queued mark (DedupeTTL)
//	<p>:{<n>}:ready, :readyset LIST, SET devices waiting for a push
//	<p>:{<n>}:wake            LIST   the device a BLMOVE took, drained first
//	<p>:{<n>}:due             ZSET   in-flight entry → visibility deadline
//	<p>:{<n>}:exp             ZSET   queued entry → maximum-age deadline
//	<p>:{<n>}:late            ZSET   message → when to report it undelivered
//	<p>:{<n>}:outbox          ZSET   receipts owed to senders, until queued
//	<p>:{<n>}:dead            LIST   dead letters: reason, user, device,
//	                                 attempts, entry, body (NUL-separated)
//	<p>:{<n>}:owner, :clean   STRING the shard's lease; a clean-handover mark
//	<p>:{instances}:delivery  ZSET   live delivery instances → lease expiry
//
// Entries are "m|<ref>|<message id>" for a message and
// "r|<transport type>|<message id>" for a receipt to a sender's device.
//
// A device registered after a message was queued does not get that message:
// only the devices known at enqueue time, or the first device of a user
// that had none, receive it.
package queue
