// Package wsio is the gateway's WebSocket connection I/O: the upgrade, the
// frame reader and the per-connection writer. It knows frames, not the
// chat protocol; the ws package gives it a Handler and sends through it.
//
// Connections are read one of two ways, chosen by Options.Poller; callers
// see the same Serve, Send, Release and Close either way, and the same
// Handler contract (HandleMessage one call at a time, in order;
// HandleClose once, last):
//
//   - A goroutine per connection (no Poller): the reader blocks in Read
//     on the socket for the life of the connection. Its stack (2 KiB, 4–8
//     KiB once a message was handled, until a GC shrinks it) is most of
//     what an idle connection costs.
//   - The epoll Poller (Linux): idle sockets sit in one epoll set with no
//     goroutine. When one becomes readable a goroutine is started for it;
//     it reads what arrived without blocking (into a pooled 4 KiB buffer),
//     hands every complete message to the Handler, keeps only the bytes of
//     an incomplete frame, arms the socket again and exits. See Poller.
//
// What an idle connection holds besides: the Conn struct (about 200 bytes)
// and the runtime's netFD and poll descriptor; no read or write buffer
// (messages are read into buffers sized to them and dropped after they are
// handled; the write queue's slice is released whenever it drains); no
// writer goroutine (one is started when a frame is queued and exits when
// the queue is empty). Timers for pings and idleness belong to the caller
// (one time.AfterFunc per connection, which holds no goroutine while it
// waits). docs/benchmarks.md has the measured figures.
//
// Lock order: a polled connection's read lock (polled.mu), then Conn.mu,
// then Poller.mu. A Handler runs under the read lock and may call Send
// and Close.
package wsio
