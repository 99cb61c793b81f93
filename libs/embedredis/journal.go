package embedredis

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// The journal is one append-only file of records:
//
//	file    = magic record*
//	record  = length:uint32le crc:uint32le payload    (CRC-32C of payload)
//	payload = 't' clock:varint                        a clock tick, Unix ns
//	        | 'c' db:uvarint n:uvarint command*n      commands, in order
//	command = argc:uvarint (len:uvarint bytes)*argc
//
// A command record holds what one client command changed: the command
// itself, a transaction's queued commands, or a script's definition and its
// EVALSHA. Replaying every record in order on an empty store rebuilds it.
const (
	journalName = "store.journal"
	magic       = "bachata-store-journal-v1\n"
	// maxRecord bounds one record; a larger length field is corruption.
	maxRecord = 1 << 30
	// headerSize is the length and CRC in front of every payload.
	headerSize = 8
)

// The kinds of record, the payload's first byte.
const (
	recordTick     = 't'
	recordCommands = 'c'
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// record is one journal entry: a tick (clock > 0) or commands run on db.
type record struct {
	clock int64
	db    int
	cmds  [][]string
}

// appendRecord frames r onto dst.
func appendRecord(dst []byte, r record) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, headerSize)...)
	if r.clock > 0 {
		dst = append(dst, recordTick)
		dst = binary.AppendVarint(dst, r.clock)
	} else {
		dst = append(dst, recordCommands)
		dst = binary.AppendUvarint(dst, uint64(r.db)) //nolint:gosec // db is 0..15
		dst = binary.AppendUvarint(dst, uint64(len(r.cmds)))
		for _, c := range r.cmds {
			dst = binary.AppendUvarint(dst, uint64(len(c)))
			for _, a := range c {
				dst = binary.AppendUvarint(dst, uint64(len(a)))
				dst = append(dst, a...)
			}
		}
	}
	payload := dst[start+headerSize:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(payload))) //nolint:gosec // bounded by maxRecord in practice
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(payload, crcTable))
	return dst
}

var errBadRecord = errors.New("malformed record")

// decodeRecord parses a payload whose CRC matched.
func decodeRecord(p []byte) (record, error) {
	if len(p) == 0 {
		return record{}, errBadRecord
	}
	kind, p := p[0], p[1:]
	switch kind {
	case recordTick:
		v, n := binary.Varint(p)
		if n <= 0 || n != len(p) || v <= 0 {
			return record{}, errBadRecord
		}
		return record{clock: v}, nil
	case recordCommands:
		d := decoder{p: p}
		db := d.uvarint()
		n := d.uvarint()
		if d.err != nil || db > maxDB || n == 0 || n > uint64(len(d.p)) {
			return record{}, errBadRecord
		}
		r := record{db: int(db), cmds: make([][]string, 0, n)} //nolint:gosec // checked above
		for range n {
			argc := d.uvarint()
			if d.err != nil || argc == 0 || argc > uint64(len(d.p)) {
				return record{}, errBadRecord
			}
			c := make([]string, 0, argc)
			for range argc {
				c = append(c, d.bytes())
			}
			r.cmds = append(r.cmds, c)
		}
		if d.err != nil || len(d.p) != 0 {
			return record{}, errBadRecord
		}
		return r, nil
	}
	return record{}, errBadRecord
}

type decoder struct {
	p   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.p)
	if n <= 0 {
		d.err = errBadRecord
		return 0
	}
	d.p = d.p[n:]
	return v
}

func (d *decoder) bytes() string {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.p)) {
		d.err = errBadRecord
		return ""
	}
	s := string(d.p[:n])
	d.p = d.p[n:]
	return s
}

// loadStats says what reading a journal found.
type loadStats struct {
	records int
	// tornBytes were dropped from the end: the part of a write a crash
	// interrupted, never acknowledged to any client.
	tornBytes int64
}

// readJournal calls apply for every record of the journal at path, in
// order. A missing file is an empty journal. A damaged tail (a record cut
// short, or a bad last record, or zeros) is what a crash in the middle of a
// write leaves: it is skipped and counted. Damage with intact records after
// it is ErrCorrupt.
func readJournal(path string, apply func(record) error) (loadStats, error) {
	f, err := os.Open(path) //nolint:gosec // the store's own file
	if errors.Is(err, os.ErrNotExist) {
		return loadStats{}, nil
	}
	if err != nil {
		return loadStats{}, fmt.Errorf("embedredis: open journal: %w", err)
	}
	defer func() { _ = f.Close() }()
	info, err := f.Stat()
	if err != nil {
		return loadStats{}, fmt.Errorf("embedredis: stat journal: %w", err)
	}
	st, err := scanJournal(bufio.NewReaderSize(f, 1<<20), info.Size(), apply)
	if err != nil {
		return st, fmt.Errorf("%w (journal %s)", err, path)
	}
	return st, nil
}

// scanJournal is readJournal on the size bytes of r.
func scanJournal(r io.Reader, size int64, apply func(record) error) (loadStats, error) {
	var st loadStats
	head := make([]byte, len(magic))
	if n, err := io.ReadFull(r, head); err != nil {
		// A journal is created whole (written, synced, then renamed), so
		// a short one was never one: start empty only if it is a prefix.
		if string(head[:n]) == magic[:n] {
			st.tornBytes = int64(n)
			return st, nil
		}
		return st, fmt.Errorf("%w: not a journal", ErrCorrupt)
	}
	if string(head) != magic {
		return st, fmt.Errorf("%w: not a journal", ErrCorrupt)
	}
	off := int64(len(magic))
	// bad decides what damage at off is: consumed are the bytes of the
	// damaged record read so far, after its header.
	bad := func(what string, consumed []byte) (loadStats, error) {
		rest, err := io.ReadAll(io.LimitReader(r, size-off))
		if err != nil {
			return st, fmt.Errorf("embedredis: read journal: %w", err)
		}
		if !tail(append(consumed, rest...)) {
			return st, fmt.Errorf("%w: %s at offset %d", ErrCorrupt, what, off)
		}
		st.tornBytes = size - off
		return st, nil
	}
	var hdr [headerSize]byte
	var payload []byte
	for off < size {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			st.tornBytes = size - off
			return st, nil
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		if n == 0 || n > maxRecord {
			return bad("bad record length", nil)
		}
		if int64(n) > size-off-headerSize {
			return bad("record cut short", nil)
		}
		if cap(payload) < int(n) {
			payload = make([]byte, n)
		}
		payload = payload[:n]
		if _, err := io.ReadFull(r, payload); err != nil {
			return st, fmt.Errorf("embedredis: read journal: %w", err)
		}
		if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(hdr[4:]) {
			return bad("checksum mismatch", payload)
		}
		rec, err := decodeRecord(payload)
		if err != nil {
			return bad("malformed record", payload)
		}
		if err := apply(rec); err != nil {
			return st, err
		}
		st.records++
		off += headerSize + int64(n)
	}
	return st, nil
}

// tail reports whether rest, the bytes from a damaged record on, hold no
// intact record: then the damage is a torn write at the end, not corruption
// in the middle. One intact record after it proves the latter. The search
// checksums at most tailScanLimit bytes; past that it assumes corruption.
func tail(rest []byte) bool {
	budget := tailScanLimit
	for i := 0; i+headerSize <= len(rest); i++ {
		n := binary.LittleEndian.Uint32(rest[i:])
		if n == 0 || n > maxRecord || i+headerSize+int(n) > len(rest) {
			continue
		}
		if budget -= int(n); budget < 0 {
			return false
		}
		p := rest[i+headerSize : i+headerSize+int(n)]
		if crc32.Checksum(p, crcTable) == binary.LittleEndian.Uint32(rest[i+4:]) {
			if _, err := decodeRecord(p); err == nil {
				return false
			}
		}
	}
	return true
}

// tailScanLimit bounds the work tail does on a damaged journal.
const tailScanLimit = 64 << 20

// writeJournal replaces the journal at path with content, atomically: a
// crash leaves either the old file or the new one, never a mix. It returns
// the new file, open for appending.
func writeJournal(path string, content []byte) (*os.File, error) {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600) //nolint:gosec // the store's own file
	if err != nil {
		return nil, fmt.Errorf("embedredis: create journal: %w", err)
	}
	fail := func(err error) (*os.File, error) {
		_ = f.Close()
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("embedredis: write journal: %w", err)
	}
	if _, err := f.Write(content); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("embedredis: write journal: %w", err)
	}
	return f, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir) //nolint:gosec // the store's own directory
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// journal is the live journal file with group commit. Records are appended
// to a memory buffer in execution order (under the server's lock); one
// syncer goroutine writes and fsyncs whatever has accumulated, so one fsync
// covers every command that arrived during the previous one; a reply waits
// until its command's record is durable.
type journal struct {
	path string
	kick chan struct{} // wakes the syncer; capacity 1
	done chan struct{} // closed when the syncer has returned

	// Owned by the syncer goroutine.
	f     *os.File
	size  int64 // bytes in f
	base  int64 // size of f right after it was written from a snapshot
	spare []byte

	mu       sync.Mutex
	durable  sync.Cond // broadcast when synced moves or err is set
	pending  []byte    // records not written yet
	appended atomic.Uint64
	synced   atomic.Uint64
	err      error // sticky: the journal can no longer make writes durable
	closing  bool
}

func newJournal(path string, f *os.File, size int64) *journal {
	j := &journal{path: path, f: f, size: size, base: size, kick: make(chan struct{}, 1), done: make(chan struct{})}
	j.durable.L = &j.mu
	return j
}

// append adds one encoded record and returns its sequence number, the mark
// a reply waits for.
func (j *journal) append(r record) uint64 {
	j.mu.Lock()
	j.pending = appendRecord(j.pending, r)
	seq := j.appended.Add(1)
	j.mu.Unlock()
	select {
	case j.kick <- struct{}{}:
	default:
	}
	return seq
}

// mark is the sequence number of the last record appended: a reply that
// waits for it shows no state that a crash could still take back.
func (j *journal) mark() uint64 { return j.appended.Load() }

// wait blocks until every record up to mark is durable.
func (j *journal) wait(mark uint64) error {
	if j.synced.Load() >= mark {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for j.synced.Load() < mark && j.err == nil {
		j.durable.Wait()
	}
	if j.synced.Load() >= mark {
		return nil
	}
	return j.err
}

// failed returns the sticky error, if the journal has failed.
func (j *journal) failed() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// next waits for records to write and takes them: the batch, and the
// sequence number of its last record. ok is false once the journal is
// closing and everything was written.
func (j *journal) next() (batch []byte, upTo uint64, ok bool) {
	j.mu.Lock()
	for len(j.pending) == 0 && !j.closing {
		j.mu.Unlock()
		<-j.kick
		j.mu.Lock()
	}
	defer j.mu.Unlock()
	if len(j.pending) == 0 || j.err != nil {
		return nil, 0, false
	}
	batch, upTo = j.pending, j.appended.Load()
	j.pending = j.spare[:0]
	return batch, upTo, true
}

// write appends a batch to the file and makes it durable.
func (j *journal) write(batch []byte, upTo uint64) error {
	_, err := j.f.Write(batch)
	if err == nil {
		err = j.f.Sync()
	}
	if err == nil {
		j.size += int64(len(batch))
		if cap(batch) <= 4<<20 {
			j.spare = batch[:0]
		}
	}
	j.settle(upTo, err)
	return err
}

// settle publishes that everything up to upTo is durable, or that the
// journal failed.
func (j *journal) settle(upTo uint64, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err != nil {
		if j.err == nil {
			j.err = fmt.Errorf("embedredis: journal: %w", err)
		}
	} else if upTo > j.synced.Load() {
		j.synced.Store(upTo)
	}
	j.durable.Broadcast()
}

// cut returns where the records appended so far end in the pending buffer,
// and the sequence number of the last one; taken with a snapshot, it says
// which records the snapshot covers.
func (j *journal) cut() (int, uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.pending), j.appended.Load()
}

// replace switches to a journal file written from a snapshot that covers
// the first n pending bytes, records up to upTo: they need no writing.
func (j *journal) replace(f *os.File, size int64, n int, upTo uint64) {
	_ = j.f.Close()
	j.f, j.size, j.base = f, size, size
	j.mu.Lock()
	j.pending = append(j.pending[:0], j.pending[n:]...)
	j.mu.Unlock()
	j.settle(upTo, nil)
}

// abandon drops what is not written yet and fails the journal, as a crash
// would; the caller holds the server's lock, so nothing appends meanwhile.
func (j *journal) abandon() {
	j.mu.Lock()
	j.pending, j.closing = nil, true
	if j.err == nil {
		j.err = errKilled
	}
	j.durable.Broadcast()
	j.mu.Unlock()
	select {
	case j.kick <- struct{}{}:
	default:
	}
}

// close asks the syncer to write what is pending and stop, waits for it,
// and closes the file.
func (j *journal) close() error {
	j.mu.Lock()
	j.closing = true
	j.mu.Unlock()
	select {
	case j.kick <- struct{}{}:
	default:
	}
	<-j.done
	err := j.failed()
	if cerr := j.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("embedredis: close journal: %w", cerr)
	}
	return err
}
