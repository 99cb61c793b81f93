package embedredis

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2/server"
)

// maxHeldReplies is how many reply bytes a connection holds back while more
// of a client's pipeline is waiting, before it sends them anyway.
const maxHeldReplies = 1 << 20

// errClosed ends a connection whose client left or whose server closes.
var errClosed = errors.New("connection closed")

// item is what the reader hands the executor: a command, or the error that
// ended reading.
type item struct {
	args []string
	err  error
}

// conn is one client connection. A reader goroutine parses commands; the
// executor runs them in order and sends the replies once the journal has
// made them durable, all the replies of a pipeline after one wait.
type conn struct {
	s    *Server
	nc   net.Conn
	in   chan item
	eof  chan struct{} // closed when the client stops sending
	done chan struct{} // closed when the executor returns

	// Owned by the executor.
	out    bytes.Buffer
	peer   *server.Peer // miniredis's per-connection state; writes into out
	mark   uint64       // the journal mark every reply in out waits for
	db     int
	multi  bool
	queued [][]string
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{s: s, nc: nc, in: make(chan item, 128), eof: make(chan struct{}), done: make(chan struct{})}
	c.peer = server.NewPeer(bufio.NewWriter(&c.out))
	return c
}

// serve runs the connection until the client leaves, the protocol breaks,
// or the server closes.
func (c *conn) serve() {
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		c.read()
	}()
	defer func() {
		close(c.done)
		_ = c.nc.Close()
		<-readerDone
	}()
	for it := range c.in {
		if it.err != nil {
			if c.flush() == nil {
				c.peer.WriteError("ERR Protocol error: " + strings.TrimPrefix(it.err.Error(), errProtocol.Error()+": "))
				c.peer.Flush()
				_ = c.flush()
			}
			return
		}
		if err := c.handle(it.args); err != nil {
			return
		}
		quit := c.peer.Closed() // QUIT
		if !quit && len(c.in) > 0 && c.out.Len() < maxHeldReplies {
			continue // more of the pipeline is here: answer it all at once
		}
		if err := c.flush(); err != nil || quit {
			return
		}
	}
}

func (c *conn) read() {
	defer close(c.in)
	r := bufio.NewReaderSize(c.nc, readBufferSize)
	for {
		args, err := readCommand(r)
		if err != nil {
			close(c.eof)
			if errors.Is(err, errProtocol) {
				select {
				case c.in <- item{err: err}:
				case <-c.done:
				}
			}
			return
		}
		select {
		case c.in <- item{args: args}:
		case <-c.done:
			return
		}
	}
}

// flush sends the replies held so far once what they show is durable.
func (c *conn) flush() error {
	if c.out.Len() == 0 {
		return nil
	}
	if err := c.s.jr.wait(c.mark); err != nil {
		return err
	}
	_, err := c.nc.Write(c.out.Bytes())
	c.out.Reset()
	return err
}

func (c *conn) handle(args []string) error {
	name := strings.ToUpper(args[0])
	var (
		mark uint64
		err  error
	)
	if emulatedBlocking[name] && !c.multi {
		mark, err = c.block(name, args)
	} else {
		mark, err = c.s.exec(c, name, args)
	}
	c.mark = max(c.mark, mark)
	return err
}

// exec runs one command and journals what it changed.
func (s *Server) exec(c *conn, name string, args []string) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.jr.failed(); err != nil {
		return 0, err
	}
	s.tick()
	if c.multi && (name == "SELECT" || emulatedBlocking[name]) {
		// SELECT would change the database of the commands queued after
		// it, which the journal keeps per transaction; a blocking command
		// in a transaction is one try, which replay cannot repeat exactly.
		c.peer.WriteError("ERR " + name + " inside MULTI is not supported by the embedded store")
		c.peer.Flush()
		return s.jr.mark(), nil
	}
	began := time.Now()
	start, before := c.out.Len(), s.jr.mark()
	s.dispatch(c.peer, args)
	s.journalReply(c, name, args, c.out.Bytes()[start:])
	mark := s.jr.mark()
	if mark != before {
		s.replayCost.Add(int64(time.Since(began)))
	}
	return mark, nil
}

// journalReply journals what a command changed, judging by its reply, and
// follows the connection's transaction and database; s.mu is held.
func (s *Server) journalReply(c *conn, name string, args []string, reply []byte) {
	if c.multi {
		switch name {
		case "EXEC":
			queued := c.queued
			c.multi, c.queued = false, nil
			if !isArray(reply) {
				return // aborted: a WATCHed key changed, or queueing failed
			}
			var cmds [][]string
			for _, q := range queued {
				qn := strings.ToUpper(q[0])
				switch {
				case qn == "EVAL" || qn == "EVALSHA":
					cmds = s.scriptCmds(cmds, qn, q)
				case s.kindOf(qn) == kindWrite:
					cmds = append(cmds, q)
				}
				// Queued commands ran inside EXEC, past the hook.
				s.wakeFor(qn, q[1:])
			}
			if len(cmds) > 0 {
				s.journalCmds(c.db, cmds)
			}
		case "DISCARD":
			c.multi, c.queued = false, nil
		default:
			if bytes.Equal(reply, replyQueued) {
				s.learnScript(args)
				c.queued = append(c.queued, args)
			}
		}
		return
	}
	switch {
	case name == "MULTI":
		c.multi = bytes.Equal(reply, replyOK)
	case name == "SELECT":
		if bytes.Equal(reply, replyOK) {
			c.db, _ = strconv.Atoi(args[1])
		}
	case name == "SCRIPT" || name == "EVAL_RO":
		s.learnScript(args)
	case name == "EVAL" || name == "EVALSHA":
		// A script that wrote nothing needs no replay; one that failed
		// after writing does, since Redis does not roll scripts back.
		if s.writes == 0 || bytes.HasPrefix(reply, []byte("-NOSCRIPT")) {
			s.learnScript(args)
			return
		}
		s.journalCmds(c.db, s.scriptCmds(nil, name, args))
	case s.kindOf(name) == kindWrite && !isError(reply):
		// A command that failed changed nothing; only scripts do both.
		s.journalCmds(c.db, [][]string{args})
	}
}

// blockPlan is how a blocking command is served: the non-blocking commands
// tried in turn, on the keys waited on.
type blockPlan struct {
	keys    []string
	try     [][]string
	wrap    bool // reply [key, value], as BLPOP and BRPOP do
	timeout time.Duration
}

// planBlocking maps a blocking command onto its non-blocking form, or
// returns the error reply for bad arguments.
func planBlocking(name string, args []string) (blockPlan, string) {
	var p blockPlan
	wrong := "ERR wrong number of arguments for '" + strings.ToLower(name) + "' command"
	switch name {
	case "BLMOVE":
		if len(args) != 6 {
			return p, wrong
		}
		p.keys, p.try = args[1:2], [][]string{{"LMOVE", args[1], args[2], args[3], args[4]}}
	case "BRPOPLPUSH":
		if len(args) != 4 {
			return p, wrong
		}
		p.keys, p.try = args[1:2], [][]string{{"LMOVE", args[1], args[2], "RIGHT", "LEFT"}}
	case "BLPOP", "BRPOP":
		if len(args) < 3 {
			return p, wrong
		}
		p.keys, p.wrap = args[1:len(args)-1], true
		for _, k := range p.keys {
			p.try = append(p.try, []string{name[1:], k})
		}
	}
	secs, err := strconv.ParseFloat(args[len(args)-1], 64)
	switch {
	case err != nil || secs != secs || secs > 1e9: //nolint:gocritic // secs != secs is NaN
		return p, "ERR timeout is not a float or out of range"
	case secs < 0:
		return p, "ERR timeout is negative"
	}
	p.timeout = time.Duration(secs * float64(time.Second))
	return p, ""
}

// block serves a blocking list command as redis-server does, but as a wait:
// it tries the non-blocking form, and when that finds nothing it waits
// until a command pushes to one of its keys, the timeout passes, the client
// leaves or the server closes. What it finally takes is journaled as the
// non-blocking command that took it.
func (c *conn) block(name string, args []string) (uint64, error) {
	p, bad := planBlocking(name, args)
	if bad != "" {
		c.peer.WriteError(bad)
		c.peer.Flush()
		return c.s.jr.mark(), nil
	}
	// What came before goes out now, not after the wait.
	if err := c.flush(); err != nil {
		return 0, err
	}
	var deadline <-chan time.Time
	if p.timeout > 0 {
		t := time.NewTimer(p.timeout)
		defer t.Stop()
		deadline = t.C
	}
	w := &waiter{keys: p.keys}
	defer c.s.unwait(w)
	for {
		mark, woken, err := c.s.tryTake(c, w, p)
		if err != nil || woken == nil {
			return mark, err
		}
		select {
		case <-woken:
		case <-deadline:
			c.peer.WriteNull()
			c.peer.Flush()
			return c.s.jr.mark(), nil
		case <-c.eof:
			return 0, errClosed
		case <-c.s.closing:
			return 0, errClosed
		}
	}
}

// tryTake runs a blocking command's non-blocking form once. When nothing was
// there it registers w and returns the channel a push closes.
func (s *Server) tryTake(c *conn, w *waiter, p blockPlan) (uint64, <-chan struct{}, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.jr.failed(); err != nil {
		return 0, nil, err
	}
	s.tick()
	for _, cmd := range p.try {
		start := c.out.Len()
		s.dispatch(c.peer, cmd)
		reply := c.out.Bytes()[start:]
		if isNull(reply) {
			c.out.Truncate(start)
			continue
		}
		if !isError(reply) {
			s.journalCmds(c.db, [][]string{cmd})
			if v, ok := bulkString(reply); ok && p.wrap {
				c.out.Truncate(start)
				c.peer.WriteLen(2)
				c.peer.WriteBulk(cmd[1])
				c.peer.WriteBulk(v)
				c.peer.Flush()
			}
		}
		return s.jr.mark(), nil, nil
	}
	return 0, s.waitOn(w), nil
}
