package embedredis

import (
	"bufio"
	"context"
	"crypto/sha1" //nolint:gosec // Redis names scripts by their SHA-1
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/alicebob/miniredis/v2/server"
)

// Options configure a Server. Zero values mean the defaults.
type Options struct {
	// Dir holds the journal and is created if missing; required. One
	// server at a time may use it (a lock file says so).
	Dir string
	// Addr is the TCP address to listen on; default "127.0.0.1:0", a free
	// loopback port. The store has no authentication: keep it on
	// loopback.
	Addr string
	// Logger receives start-up, compaction and failure reports; default
	// discards them.
	Logger *slog.Logger
	// TickInterval is the shortest time between two advances of the clock
	// that expires keys; default 100ms. A key expires up to this late, or
	// up to 50 times a tick's own duration when ticking a large keyspace
	// takes longer.
	TickInterval time.Duration
	// CompactSize is the journal size that starts a compaction while the
	// store runs, once the journal has also doubled since the last one;
	// default 64 MiB. The journal is always compacted on start.
	CompactSize int64
	// MaxReplay bounds the time a restart spends replaying the journal:
	// once the commands and ticks journaled since the last compaction took
	// this long to run, the journal is compacted; default 5s. Replay runs
	// them again, so it takes about as long.
	MaxReplay time.Duration
}

const (
	defaultTickInterval = 100 * time.Millisecond
	defaultCompactSize  = 64 << 20
	defaultMaxReplay    = 5 * time.Second
	// tickCostFactor stretches the tick interval to this many times the
	// duration of the last tick.
	tickCostFactor = 50
)

// Server is a running store. It speaks the Redis protocol on its own
// listener; every command runs in one in-memory miniredis, one at a time,
// and every change is journaled and made durable before the reply leaves.
type Server struct {
	opts    Options
	log     *slog.Logger
	mr      *miniredis.Miniredis
	cmds    *server.Server // miniredis's command table, without a listener of its own
	ln      net.Listener
	unlock  func()
	jr      *journal
	closing chan struct{}
	wg      sync.WaitGroup

	// mu serializes every command, clock tick and snapshot, so that the
	// journal's order is the order of execution. Lock order: mu, then
	// journal.mu, then miniredis's own lock. connMu is never held with
	// another.
	mu      sync.Mutex
	clock   int64     // store time, Unix ns: moves forward only, in ticks
	nextTik time.Time // when the next tick is due
	scripts map[string]string
	defined map[string]bool                 // scripts the current journal file defines
	waiting map[string]map[*waiter]struct{} // blocked commands by the keys they wait on
	kinds   map[string]kind
	depth   int // Dispatch calls within the current top-level command
	writes  int // write commands a script has run within it

	// replayCost is how long the commands and ticks journaled since the
	// last compaction took to run, in ns: about what replaying them costs.
	replayCost atomic.Int64

	connMu sync.Mutex
	conns  map[*conn]struct{}

	closeOnce sync.Once
	closeErr  error
}

// Open loads the store in opts.Dir — replaying its journal, dropping a
// tail a crash tore, compacting it — and starts serving on opts.Addr.
func Open(opts Options) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("embedredis: Dir is required")
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.TickInterval <= 0 {
		opts.TickInterval = defaultTickInterval
	}
	if opts.CompactSize <= 0 {
		opts.CompactSize = defaultCompactSize
	}
	if opts.MaxReplay <= 0 {
		opts.MaxReplay = defaultMaxReplay
	}
	if err := os.MkdirAll(opts.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("embedredis: %w", err)
	}
	unlock, err := lockDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:    opts,
		log:     opts.Logger,
		mr:      miniredis.NewMiniRedis(),
		unlock:  unlock,
		closing: make(chan struct{}),
		scripts: map[string]string{},
		defined: map[string]bool{},
		waiting: map[string]map[*waiter]struct{}{},
		kinds:   map[string]kind{},
		conns:   map[*conn]struct{}{},
	}
	if err := s.start(); err != nil {
		s.mr.Close()
		unlock()
		return nil, err
	}
	return s, nil
}

func (s *Server) start() error {
	began := time.Now()
	// Dial starts miniredis on an in-memory pipe, with no listener: the
	// only way in is this server, which journals.
	pc, err := s.mr.Dial()
	if err != nil {
		return fmt.Errorf("embedredis: start miniredis: %w", err)
	}
	_ = pc.Close()
	s.cmds = s.mr.Server()
	s.cmds.SetPreHook(s.hook)
	// Listen first: a taken port fails before the work of loading.
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("embedredis: listen: %w", err)
	}
	s.ln = ln

	path := filepath.Join(s.opts.Dir, journalName)
	s.mu.Lock()
	st, err := s.replay(path)
	if err != nil {
		s.mu.Unlock()
		_ = ln.Close()
		return err
	}
	// Like a restarted redis-server, start with an empty script cache:
	// clients load their scripts again on NOSCRIPT.
	s.dispatchQuiet([]string{"SCRIPT", "FLUSH"})
	s.scripts = map[string]string{}
	s.advance(time.Now().UnixNano())
	snap, keys, err := s.snapshot()
	s.mu.Unlock()
	var f *os.File
	if err == nil {
		f, err = writeJournal(path, snap)
	}
	if err != nil {
		_ = ln.Close()
		return err
	}
	s.jr = newJournal(path, f, int64(len(snap)))
	if st.tornBytes > 0 {
		s.log.Warn("embedded store dropped the torn end of its journal", "bytes", st.tornBytes)
	}
	s.log.Info("embedded store ready", "addr", s.Addr(), "dir", s.opts.Dir, "keys", keys,
		"records_replayed", st.records, "journal_bytes", len(snap), "took", time.Since(began))
	go s.syncLoop()
	s.wg.Add(1)
	go s.acceptLoop()
	return nil
}

// Addr is the host:port the store listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is a redis:// URL for the store, database 0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Close stops serving, makes everything journaled durable, and releases
// the directory. It closes every client connection.
func (s *Server) Close() error {
	s.shutdown(false)
	return s.closeErr
}

// Kill stops the server at once, as a crash would: connections are cut and
// records not written yet are dropped, never written. Every reply a client
// got is in the journal already, so a server opened on the directory
// afterwards has all of it. For tests of recovery; servers stop with Close.
func (s *Server) Kill() { s.shutdown(true) }

func (s *Server) shutdown(kill bool) {
	s.closeOnce.Do(func() {
		if kill {
			s.mu.Lock()
			s.jr.abandon()
			s.mu.Unlock()
		}
		close(s.closing)
		_ = s.ln.Close()
		s.connMu.Lock()
		for c := range s.conns {
			_ = c.nc.Close()
		}
		s.connMu.Unlock()
		s.wg.Wait() // the connections, so nothing appends any more
		if err := s.jr.close(); !kill {
			s.closeErr = err
		}
		s.mr.Close()
		s.unlock()
	})
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.closing:
			default:
				s.log.Error("embedded store stopped accepting connections", "err", err)
			}
			return
		}
		c := newConn(s, nc)
		s.connMu.Lock()
		select {
		case <-s.closing:
			s.connMu.Unlock()
			_ = nc.Close()
			return
		default:
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.connMu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve()
			s.connMu.Lock()
			delete(s.conns, c)
			s.connMu.Unlock()
		}()
	}
}

// syncLoop is the journal's writer: it writes and fsyncs what accumulated
// while the previous write ran, and compacts the journal when it has grown.
func (s *Server) syncLoop() {
	defer close(s.jr.done)
	for {
		batch, upTo, ok := s.jr.next()
		if !ok {
			return
		}
		if err := s.jr.write(batch, upTo); err != nil {
			s.log.Error("embedded store cannot write its journal: refusing every command", "err", err)
			return
		}
		if s.jr.size >= max(s.opts.CompactSize, 2*s.jr.base) || time.Duration(s.replayCost.Load()) >= s.opts.MaxReplay {
			s.compact()
		}
	}
}

// compact rewrites the journal from a snapshot, while commands go on: the
// snapshot covers every record appended before it, which are dropped, and
// the records after it are written to the new file once it is in place.
// On failure the old journal stays and is written to as before.
func (s *Server) compact() {
	began := time.Now()
	s.mu.Lock()
	snap, keys, err := s.snapshot()
	n, upTo := s.jr.cut()
	s.replayCost.Store(0)
	s.mu.Unlock()
	if err == nil {
		var f *os.File
		if f, err = writeJournal(s.jr.path, snap); err == nil {
			old := s.jr.size
			s.jr.replace(f, int64(len(snap)), n, upTo)
			s.log.Info("embedded store compacted its journal", "keys", keys, "bytes_before", old, "bytes_after", len(snap), "took", time.Since(began))
			return
		}
	}
	// Try again once the journal has doubled from here, or the replay
	// budget is spent again.
	s.jr.base = s.jr.size
	s.log.Warn("embedded store could not compact its journal; it keeps growing", "err", err)
}

// hook runs before every command miniredis dispatches, a script's included:
// it refuses what the store does not take, counts a script's writes, and
// wakes commands blocked on a list the command may push to.
func (s *Server) hook(p *server.Peer, cmd string, args ...string) bool {
	s.depth++
	nested := s.depth > 1
	if why := refusal(cmd, args, nested); why != "" {
		p.WriteError(why)
		return true
	}
	if nested && s.kindOf(cmd) == kindWrite {
		s.writes++
	}
	s.wakeFor(cmd, args)
	return false
}

// kindOf classifies a command; s.mu is held.
func (s *Server) kindOf(cmd string) kind {
	if k, ok := s.kinds[cmd]; ok {
		return k
	}
	k := kindWrite
	switch {
	case !s.cmds.IsRegisteredCommand(cmd):
		k = kindUnknown
	case s.cmds.IsReadOnlyCommand(cmd):
		k = kindRead
	case sessionCommands[cmd]:
		k = kindSession
	}
	if len(s.kinds) < 1024 { // unknown names come from clients: bound the cache
		s.kinds[cmd] = k
	}
	return k
}

// waiter is one blocked command, woken by a push to any of its keys.
type waiter struct {
	keys []string
	ch   chan struct{} // closed by the wake; a new one for each wait
}

// wakeFor wakes the commands blocked on keys cmd may push to; s.mu is held.
// It runs before cmd does, but a woken command tries again only once it
// has s.mu, after cmd.
func (s *Server) wakeFor(cmd string, args []string) {
	if len(s.waiting) == 0 {
		return
	}
	key, all := pushTarget(cmd, args)
	switch {
	case all:
		for _, ws := range s.waiting {
			for w := range ws {
				s.wake(w)
			}
		}
	case key != "":
		for w := range s.waiting[key] {
			s.wake(w)
		}
	}
}

func (s *Server) wake(w *waiter) {
	close(w.ch)
	s.unwaitLocked(w)
}

// waitOn registers w on its keys and returns the channel its wake closes;
// s.mu is held.
func (s *Server) waitOn(w *waiter) <-chan struct{} {
	w.ch = make(chan struct{})
	for _, k := range w.keys {
		ws := s.waiting[k]
		if ws == nil {
			ws = map[*waiter]struct{}{}
			s.waiting[k] = ws
		}
		ws[w] = struct{}{}
	}
	return w.ch
}

// unwait forgets w once its command is done.
func (s *Server) unwait(w *waiter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unwaitLocked(w)
}

func (s *Server) unwaitLocked(w *waiter) {
	for _, k := range w.keys {
		if ws := s.waiting[k]; ws != nil {
			delete(ws, w)
			if len(ws) == 0 {
				delete(s.waiting, k)
			}
		}
	}
}

// dispatch runs one top-level command on p; s.mu is held.
func (s *Server) dispatch(p *server.Peer, args []string) {
	s.depth, s.writes = 0, 0
	s.cmds.Dispatch(p, args)
	p.Flush()
}

// dispatchQuiet runs a command whose reply nobody reads; s.mu is held.
func (s *Server) dispatchQuiet(args []string) {
	s.dispatch(server.NewPeer(bufio.NewWriter(io.Discard)), args)
}

// journalCmds journals what a command changed; s.mu is held.
func (s *Server) journalCmds(db int, cmds [][]string) {
	s.jr.append(record{db: db, cmds: cmds})
}

// scriptCmds turns a script call into what replay needs: SCRIPT LOAD the
// first time this journal file uses the script, then EVALSHA. Logging the
// SHA instead of the body keeps records small; s.mu is held.
func (s *Server) scriptCmds(cmds [][]string, name string, args []string) [][]string {
	if len(args) < 3 {
		return append(cmds, args)
	}
	sha := args[1]
	if name == "EVAL" {
		sha = sha1Hex(args[1])
		s.scripts[sha] = args[1]
	}
	if body, ok := s.scripts[sha]; ok && !s.defined[sha] {
		s.defined[sha] = true
		cmds = append(cmds, []string{"SCRIPT", "LOAD", body})
	}
	return append(cmds, append([]string{"EVALSHA", sha}, args[2:]...))
}

// learnScript remembers a script's body by its SHA, so an EVALSHA of it can
// be journaled with its definition; s.mu is held.
func (s *Server) learnScript(args []string) {
	if len(args) >= 3 && (argIs(args[0], "SCRIPT") && argIs(args[1], "LOAD")) {
		s.scripts[sha1Hex(args[2])] = args[2]
	}
	if len(args) >= 2 && (argIs(args[0], "EVAL") || argIs(args[0], "EVAL_RO")) {
		s.scripts[sha1Hex(args[1])] = args[1]
	}
}

// tick advances the store clock to now when a tick is due, expiring keys,
// and journals it; s.mu is held. Ticks run before commands, not on a
// timer: an idle store does not tick, and replay sees each tick exactly
// where it fell between commands.
func (s *Server) tick() {
	now := time.Now()
	if now.Before(s.nextTik) {
		return
	}
	ns := now.UnixNano()
	if ns > s.clock {
		s.advance(ns)
		s.jr.append(record{clock: ns})
	}
	took := time.Since(now)
	s.replayCost.Add(int64(took))
	s.nextTik = now.Add(max(s.opts.TickInterval, tickCostFactor*took))
}

// advance moves the store clock forward to ns; s.mu is held. miniredis
// keeps TTLs as durations, so moving its clock is counting them down.
func (s *Server) advance(ns int64) {
	if ns <= s.clock {
		return
	}
	if s.clock != 0 {
		s.mr.FastForward(time.Duration(ns - s.clock))
	}
	s.clock = ns
	s.mr.SetTime(time.Unix(0, ns))
}

// replay applies the journal at path to the empty store; s.mu is held.
func (s *Server) replay(path string) (loadStats, error) {
	p := server.NewPeer(bufio.NewWriter(io.Discard))
	db := 0
	return readJournal(path, func(r record) error {
		if r.clock > 0 {
			s.advance(r.clock)
			return nil
		}
		if r.db != db {
			s.dispatch(p, []string{"SELECT", strconv.Itoa(r.db)})
			db = r.db
		}
		for _, c := range r.cmds {
			s.dispatch(p, c)
		}
		return nil
	})
}

// snapshot encodes the whole keyspace as a journal file: a tick with the
// store clock, then one record per key that writes it back, with its
// remaining time to live. s.mu is held.
func (s *Server) snapshot() ([]byte, int, error) {
	buf := appendRecord([]byte(magic), record{clock: max(s.clock, 1)})
	keys := 0
	for db := 0; db <= maxDB; db++ {
		d := s.mr.DB(db)
		for _, k := range d.Keys() {
			cmds, err := keyCommands(d, k)
			if err != nil {
				return nil, 0, err
			}
			buf = appendRecord(buf, record{db: db, cmds: cmds})
			keys++
		}
	}
	s.defined = map[string]bool{}
	return buf, keys, nil
}

// snapshotChunk bounds the elements one write-back command carries.
const snapshotChunk = 1000

// keyCommands writes one key back: its value in chunks, then its TTL.
func keyCommands(d *miniredis.RedisDB, k string) ([][]string, error) {
	var cmds [][]string
	chunked := func(cmd string, elems []string, per int) {
		for i := 0; i < len(elems); i += snapshotChunk * per {
			c := append([]string{cmd, k}, elems[i:min(len(elems), i+snapshotChunk*per)]...)
			cmds = append(cmds, c)
		}
	}
	var err error
	switch t := d.Type(k); t {
	case "string":
		var v string
		if v, err = d.Get(k); err == nil {
			cmds = append(cmds, []string{"SET", k, v})
		}
	case "hash":
		var fields []string
		if fields, err = d.HKeys(k); err == nil {
			fv := make([]string, 0, 2*len(fields))
			for _, f := range fields {
				fv = append(fv, f, d.HGet(k, f))
			}
			chunked("HSET", fv, 2)
		}
	case "list":
		var l []string
		if l, err = d.List(k); err == nil {
			chunked("RPUSH", l, 1)
		}
	case "set":
		var m []string
		if m, err = d.Members(k); err == nil {
			chunked("SADD", m, 1)
		}
	case "zset":
		var z map[string]float64
		if z, err = d.SortedSet(k); err == nil {
			members := make([]string, 0, len(z))
			for m := range z {
				members = append(members, m)
			}
			sort.Strings(members)
			sm := make([]string, 0, 2*len(members))
			for _, m := range members {
				sm = append(sm, strconv.FormatFloat(z[m], 'g', -1, 64), m)
			}
			chunked("ZADD", sm, 2)
		}
	default:
		return nil, fmt.Errorf("embedredis: snapshot: key %q has type %q, which the store cannot write back", k, t)
	}
	if err != nil {
		return nil, fmt.Errorf("embedredis: snapshot: read key %q: %w", k, err)
	}
	if ttl := d.TTL(k); ttl > 0 {
		ms := (ttl + time.Millisecond - 1) / time.Millisecond
		cmds = append(cmds, []string{"PEXPIRE", k, strconv.FormatInt(int64(ms), 10)})
	}
	return cmds, nil
}

func sha1Hex(s string) string {
	h := sha1.Sum([]byte(s)) //nolint:gosec // Redis names scripts by their SHA-1
	return hex.EncodeToString(h[:])
}

func argIs(a, name string) bool { return strings.EqualFold(a, name) }
