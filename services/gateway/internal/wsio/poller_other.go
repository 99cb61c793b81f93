//go:build !linux

package wsio

import "net"

// Poller is the epoll reader, on Linux only; see poller_linux.go.
type Poller struct{}

// NewPoller returns ErrPollerUnsupported: callers fall back to a
// goroutine per connection.
func NewPoller() (*Poller, error) { return nil, ErrPollerUnsupported }

// Close does nothing.
func (*Poller) Close() error { return nil }

// Len is always 0.
func (*Poller) Len() int { return 0 }

func (*Poller) attach(net.Conn) *polled         { return nil }
func (*Poller) add(*Conn) error                 { return ErrPollerUnsupported }
func (*Poller) arm(*Conn) error                 { return ErrPollerUnsupported }
func (*Poller) remove(*Conn)                    {}
func (*Poller) read(*Conn, []byte) (int, error) { return 0, ErrPollerUnsupported }
