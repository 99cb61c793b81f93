// Package wsio is the gateway's WebSocket connection I/O: the upgrade, the
// frame reader and the per-connection writer. It knows frames, not the
// chat protocol; the ws package gives it a Handler and sends through it.
//
// It is a seam on purpose. Today every connection has one goroutine, the
// reader, blocked in Read on the socket. A later milestone moves idle
// connections to an epoll reader (gobwas/ws reads frames from any
// io.Reader, so that is possible) to reach a few KiB per idle connection;
// that change stays inside this package because callers only see Serve,
// Send, Release and Close.
//
// What an idle connection holds now:
//   - one goroutine, the reader, started by the caller once the HTTP
//     handler is done with the upgrade (so net/http's request and its
//     buffers are released), with its stack: it grows while a message is
//     handled and the runtime shrinks it back at GC;
//   - the Conn struct (about 150 bytes) and the runtime's netFD;
//   - no read or write buffer: frames are read straight from the socket
//     into a buffer sized to the message and dropped after it is handled,
//     and the write queue's slice is released whenever it drains;
//   - no writer goroutine: one is started when a frame is queued and exits
//     when the queue is empty.
//
// Timers for pings and idleness belong to the caller (one time.AfterFunc
// per connection, which holds no goroutine while it waits).
package wsio
