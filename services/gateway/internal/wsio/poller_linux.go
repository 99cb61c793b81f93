package wsio

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// pollEvents is how many ready sockets one wait takes at most.
const pollEvents = 256

// Poller reads many connections without a goroutine each: one goroutine
// waits on an epoll set holding every idle socket (EPOLLONESHOT, so a
// ready socket is reported once until it is armed again) and starts a
// goroutine per ready socket, which reads and handles what arrived, then
// arms the socket again and exits. An idle connection therefore holds no
// goroutine and no read buffer; a busy one holds a goroutine only while it
// has frames to handle, so a slow handler (a Route waiting on the router)
// holds up its own connection and no other.
//
// The epoll set is itself registered with the Go runtime's poller, so the
// waiting goroutine parks like any network read instead of holding a
// thread in epoll_wait. Every epoll_ctl runs inside the sockets' and the
// set's RawConn.Control, which keeps their descriptors from being closed
// and reused meanwhile.
type Poller struct {
	ep   *os.File
	raw  syscall.RawConn
	done chan struct{}

	// mu guards conns and next: the registered connections by key. Keys
	// are never reused, so a stale event finds nothing.
	mu    sync.Mutex
	conns map[uint64]*Conn
	next  uint64
}

// NewPoller creates a Poller and starts its goroutine; Close stops it.
func NewPoller() (*Poller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll create: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("epoll set non-blocking: %w", err)
	}
	ep := os.NewFile(uintptr(fd), "epoll")
	raw, err := ep.SyscallConn()
	if err != nil {
		_ = ep.Close()
		return nil, fmt.Errorf("epoll raw conn: %w", err)
	}
	p := &Poller{ep: ep, raw: raw, done: make(chan struct{}), conns: make(map[uint64]*Conn)}
	go p.run()
	return p, nil
}

// Close stops the poller. Connections still registered end: each is
// closed (CloseAbnormal unless it was closing) and its HandleClose runs,
// on goroutines Close does not wait for. Callers drain connections first.
func (p *Poller) Close() error {
	err := p.ep.Close()
	<-p.done
	p.mu.Lock()
	left := make([]*Conn, 0, len(p.conns))
	for _, c := range p.conns {
		left = append(left, c)
	}
	p.mu.Unlock()
	for _, c := range left {
		// Arming fails now, which ends the connection.
		go c.readReady()
	}
	if err != nil {
		return fmt.Errorf("close epoll: %w", err)
	}
	return nil
}

// Len is the number of connections registered.
func (p *Poller) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

func (p *Poller) run() {
	defer close(p.done)
	events := make([]unix.EpollEvent, pollEvents)
	for {
		var (
			n    int
			werr error
		)
		err := p.raw.Read(func(fd uintptr) bool {
			n, werr = unix.EpollWait(int(fd), events, 0)
			// Nothing ready: park until the set is readable.
			return n != 0 || (werr != nil && !errors.Is(werr, unix.EINTR))
		})
		if err != nil {
			return // closed
		}
		if werr != nil {
			continue // n is -1: nothing to hand out; EINTR is retried
		}
		p.mu.Lock()
		for _, ev := range events[:n] {
			if c := p.conns[eventKey(&ev)]; c != nil {
				go c.readReady()
			}
		}
		p.mu.Unlock()
	}
}

// attach returns the polled state of nc, or nil when nc has no
// descriptor to poll (a net.Pipe, TLS): a goroutine reads those.
func (p *Poller) attach(nc net.Conn) *polled {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return &polled{poller: p, raw: raw}
}

// add registers c, disarmed: its first read arms it. Called with
// polled.mu held.
func (p *Poller) add(c *Conn) error {
	p.mu.Lock()
	p.next++
	key := p.next
	p.conns[key] = c
	p.mu.Unlock()
	c.polled.id = key
	return p.ctl(c, unix.EPOLL_CTL_ADD, unix.EPOLLONESHOT)
}

// arm reports the socket once when it is readable or fails. Called with
// polled.mu held; a socket that is readable already is reported at once.
func (p *Poller) arm(c *Conn) error {
	return p.ctl(c, unix.EPOLL_CTL_MOD, unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLONESHOT)
}

// remove unregisters c. The socket may be closed already, which removed
// it from the set. Called with polled.mu held.
func (p *Poller) remove(c *Conn) {
	p.mu.Lock()
	delete(p.conns, c.polled.id)
	p.mu.Unlock()
	_ = p.ctl(c, unix.EPOLL_CTL_DEL, 0)
}

func (p *Poller) ctl(c *Conn, op int, events uint32) error {
	ev := unix.EpollEvent{Events: events}
	setEventKey(&ev, c.polled.id)
	var cerr error
	err := p.raw.Control(func(epfd uintptr) {
		if err := c.polled.raw.Control(func(fd uintptr) {
			cerr = unix.EpollCtl(int(epfd), op, int(fd), &ev)
		}); err != nil {
			cerr = err
		}
	})
	if err != nil {
		return fmt.Errorf("poller closed: %w", err)
	}
	if cerr != nil {
		return fmt.Errorf("epoll_ctl: %w", cerr)
	}
	return nil
}

// read reads what the socket holds without waiting: errWouldBlock when
// it holds nothing, io.EOF when the peer closed.
func (p *Poller) read(c *Conn, b []byte) (int, error) {
	var (
		n    int
		rerr error
	)
	err := c.polled.raw.Read(func(fd uintptr) bool {
		for {
			n, rerr = unix.Read(int(fd), b)
			if !errors.Is(rerr, unix.EINTR) {
				return true
			}
		}
	})
	switch {
	case err != nil:
		return 0, err
	case errors.Is(rerr, unix.EAGAIN):
		return 0, errWouldBlock
	case rerr != nil:
		return 0, os.NewSyscallError("read", rerr)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// eventKey and setEventKey keep a connection's key in the event's 64 bits
// of user data, which x/sys/unix splits into Fd and Pad.
func eventKey(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32 //nolint:gosec // bit reinterpretation
}

func setEventKey(ev *unix.EpollEvent, key uint64) {
	ev.Fd = int32(uint32(key))        //nolint:gosec // bit reinterpretation
	ev.Pad = int32(uint32(key >> 32)) //nolint:gosec // bit reinterpretation
}
