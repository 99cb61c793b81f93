// Package embedredis is a durable, single-node, Redis-compatible store that
// runs inside the process: `make run` uses it when REDIS_URL is unset, so
// the whole suite runs on a machine with nothing but Go.
//
// The services talk to Redis through go-redis, and the Redis protocol is
// the interface of their queues: delivery's Lua scripts, BLMOVE waits and
// pipelines, presence's scripts and scans. Rather than a second
// implementation of the queues, the store serves that same protocol on a
// loopback port, so the services run unchanged and the queue and presence
// test suites run on it as a third topology beside redis-server and Redis
// Cluster.
//
// # Engine
//
// Commands run in github.com/alicebob/miniredis/v2, an in-memory Redis
// with Lua through gopher-lua. This package owns the listener and feeds
// miniredis one command at a time under one lock, so the order in which
// commands run is the order in which they are journaled, whatever the
// number of connections. miniredis itself has no listener.
//
// # Durability
//
// Every command that changes data is appended to a journal (see journal.go
// for the format) in execution order, and no reply leaves before the
// journal is fsynced past the command: the equivalent of redis-server's
// appendfsync always. Replies to reads wait too, until what they show is
// durable, so no client ever sees a write a crash could take back. The
// fsync is a group commit: one goroutine writes and fsyncs whatever
// accumulated during the previous fsync, and a pipeline's replies are sent
// after one wait, so concurrent clients and pipelines share fsyncs.
//
// What is journaled is what ran, in a form that replays to the same state:
//   - a write command, unless it failed (a failed command changed nothing);
//   - a transaction's queued writes, once EXEC ran them (not when WATCH
//     aborted it);
//   - a script that wrote, as EVALSHA preceded by one SCRIPT LOAD of its
//     body per journal file, since replay starts with an empty script
//     cache; scripts that wrote nothing are not journaled;
//   - a blocking BLMOVE, BRPOPLPUSH, BLPOP or BRPOP as the LMOVE, LPOP or
//     RPOP that finally took an element. The store serves these itself: it
//     tries the non-blocking form and waits for a push to the key, so a
//     blocked client never holds the lock.
//
// Scripts run again on replay, so they must be deterministic: they take the
// time as an argument. TIME, RANDOMKEY, SRANDMEMBER, HRANDFIELD and
// ZRANDMEMBER are refused inside scripts, SPOP everywhere; Lua's
// math.random is not caught, and must not decide what a script writes.
//
// # Time and expiry
//
// Keys expire by a store clock that moves in ticks: before a command, when
// TickInterval (100ms) has passed, the clock moves to the wall clock and the
// tick is journaled, so replay expires exactly the keys that had expired at
// that point. A TTL can therefore run up to one tick late. Time passes while
// the store is down: on start, the clock moves to now and keys whose time
// ran out are gone. A tick touches every key (miniredis counts TTLs down
// one by one), so the interval stretches to 50 times a tick's duration on a
// large keyspace.
//
// # Start, crash and compaction
//
// Open replays the journal on an empty store, drops a tail torn by a crash
// in the middle of a write (a record cut short, a bad last record, zeros:
// never acknowledged, since nothing after it was fsynced), refuses to start
// with ErrCorrupt when damage has intact records after it, then rewrites
// the journal from a snapshot of the data: one record per key with its
// remaining TTL. The rewrite is atomic (written, fsynced, renamed). While
// running, the journal is compacted the same way when it passes
// CompactSize and has doubled since the last compaction, or when replaying
// it would take longer than MaxReplay (the time its commands took to run).
// A compaction holds the store's lock only to take the snapshot; commands
// journaled meanwhile go to the new file.
//
// # Limits
//
// It is for one machine and development scale: everything is in memory,
// one command runs at a time, and there is no replication, no
// authentication and no cluster mode. Streams, HyperLogLogs, hash field
// expiry and pub/sub are refused; databases are 0 to 15. Production runs
// redis-server with AOF, or Redis Cluster.
package embedredis
