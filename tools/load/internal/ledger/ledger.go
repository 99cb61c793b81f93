// Package ledger is the load scenarios' accounting: one record per message
// sent, with the time of its 100, its first delivery and its 300, and the
// counts a report needs (sent, 100s, delivered unique, duplicates, 300s,
// lost, errors by code) with latency histograms built from the records at
// the end.
//
// Messages are grouped in streams, one per sending connection; a
// message's id is its stream's sequence number, so the hot path is an
// index into a slice under the stream's own lock, never a shared map.
// The totals polled during the drain are atomics.
package ledger

import (
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bachata-chat/bachata/tools/load/internal/hist"
)

// record is one message. Times are nanoseconds since the ledger's base,
// plus one, so that zero means "not yet".
type record struct {
	sent, accepted, delivered, lastDelivered, receipt int64
	// deliveries counts delivered copies: unique ones for a group message
	// (one per member) plus duplicates.
	deliveries uint32
	// members is how many distinct members received it (group).
	members  uint32
	receipts uint16
	errCode  int32
}

// stream is one sender's messages, indexed by sequence number.
type stream struct {
	mu   sync.Mutex
	recs []record
	// each is send → every member's delivery, kept for groups only.
	each *hist.Histogram
}

// Ledger accounts for every message of one run. Its methods are safe for
// concurrent use.
type Ledger struct {
	base    time.Time
	streams []stream
	// fanout is how many deliveries make a message delivered: 1 for
	// direct, the members but the sender for a group.
	fanout uint32

	sent, accepted, failed, delivered, receipts atomic.Int64
	unknown                                     atomic.Int64

	errMu    sync.Mutex
	errCodes map[int]int64
}

// New returns a ledger of n streams whose messages each expect fanout
// deliveries (1 for direct messages).
func New(n int, fanout int) *Ledger {
	l := &Ledger{base: time.Now(), streams: make([]stream, n), fanout: uint32(max(fanout, 1)), errCodes: make(map[int]int64)} //nolint:gosec // fanout is a member count, far below 2^32
	if fanout > 1 {
		for i := range l.streams {
			l.streams[i].each = &hist.Histogram{}
		}
	}
	return l
}

func (l *Ledger) since(at time.Time) int64 { return int64(at.Sub(l.base)) + 1 }

// Sent records a message about to be written on stream s at time at and
// returns its sequence number, the message's id.
func (l *Ledger) Sent(s int, at time.Time) int {
	st := &l.streams[s]
	st.mu.Lock()
	st.recs = append(st.recs, record{sent: l.since(at)})
	seq := len(st.recs) - 1
	st.mu.Unlock()
	l.sent.Add(1)
	return seq
}

// with runs f on message seq of stream s under the stream's lock; false
// when there is no such message (an id this run never sent).
func (l *Ledger) with(s, seq int, f func(r *record)) bool {
	return l.withStream(s, seq, func(_ *stream, r *record) { f(r) })
}

func (l *Ledger) withStream(s, seq int, f func(st *stream, r *record)) bool {
	if s < 0 || s >= len(l.streams) || seq < 0 {
		l.unknown.Add(1)
		return false
	}
	st := &l.streams[s]
	st.mu.Lock()
	defer st.mu.Unlock()
	if seq >= len(st.recs) {
		l.unknown.Add(1)
		return false
	}
	f(st, &st.recs[seq])
	return true
}

// Accepted records the 100 of message seq and reports whether it is the
// message's first answer (100 or error), which frees its sender's window.
func (l *Ledger) Accepted(s, seq int, at time.Time) bool {
	first := false
	l.with(s, seq, func(r *record) {
		if r.accepted != 0 {
			return
		}
		first = r.errCode == 0
		r.accepted = l.since(at)
		l.accepted.Add(1)
	})
	return first
}

// Failed records an error reply to message seq and reports whether it is
// the message's first answer.
func (l *Ledger) Failed(s, seq int, code int, at time.Time) bool {
	first, counted := false, false
	l.with(s, seq, func(r *record) {
		if r.errCode != 0 {
			return
		}
		first, counted = r.accepted == 0, true
		r.errCode = int32(max(min(code, 1<<30), 1)) //nolint:gosec // clamped
		l.failed.Add(1)
	})
	if counted {
		l.errMu.Lock()
		l.errCodes[code]++
		l.errMu.Unlock()
	}
	return first
}

// Delivered records that a recipient got message seq. dup says the
// recipient had it already: a group member keeps its own set of what it
// got; a direct message's single recipient need not, since any copy after
// the record's first is a duplicate.
func (l *Ledger) Delivered(s, seq int, at time.Time, dup bool) {
	l.withStream(s, seq, func(st *stream, r *record) {
		r.deliveries++
		if dup || r.members >= l.fanout {
			return
		}
		t := l.since(at)
		if st.each != nil {
			st.each.Record(time.Duration(t - r.sent))
		}
		if r.delivered == 0 {
			r.delivered = t
		}
		r.lastDelivered = max(r.lastDelivered, t)
		r.members++
		if r.members == l.fanout {
			l.delivered.Add(1)
		}
	})
}

// Receipt records a 300 for message seq.
func (l *Ledger) Receipt(s, seq int, at time.Time) {
	l.with(s, seq, func(r *record) {
		r.receipts++
		if r.receipts == 1 {
			r.receipt = l.since(at)
			l.receipts.Add(1)
		}
	})
}

// Unknown counts a frame that names no message of this run.
func (l *Ledger) Unknown() { l.unknown.Add(1) }

// Settled reports whether every message has its outcome: an error, or a
// 100, every delivery and, when receipts is set, a 300. The drain waits
// for it.
func (l *Ledger) Settled(receipts bool) bool {
	sent, failed := l.sent.Load(), l.failed.Load()
	done := l.accepted.Load()+failed >= sent && l.delivered.Load()+failed >= sent
	if receipts {
		done = done && l.receipts.Load()+failed >= sent
	}
	return done
}

// Totals are the counts of a report.
type Totals struct {
	// Sent is every message written.
	Sent int64 `json:"sent"`
	// Accepted is the messages that got a 100.
	Accepted int64 `json:"accepted_100"`
	// Delivered is the messages every recipient got at least once.
	Delivered int64 `json:"delivered_unique"`
	// Deliveries is every copy received, duplicates included.
	Deliveries int64 `json:"deliveries"`
	// Duplicates is copies beyond the first per recipient.
	Duplicates int64 `json:"duplicates"`
	// Receipts is the messages that got a 300.
	Receipts int64 `json:"receipts_300"`
	// DupReceipts is 300s beyond the first (the protocol says exactly once).
	DupReceipts int64 `json:"duplicate_300"`
	// Lost is messages that got a 100 but did not reach every recipient
	// by the end of the drain: the figure that must be zero.
	Lost int64 `json:"lost"`
	// Partial is lost messages that reached some recipients (group).
	Partial int64 `json:"partially_delivered"`
	// NoReceipt is delivered messages whose 300 never came.
	NoReceipt int64 `json:"delivered_without_300"`
	// Unanswered is messages that got neither a 100 nor an error.
	Unanswered int64 `json:"unanswered"`
	// Failed is messages answered with an error; Errors by code.
	Failed int64            `json:"failed"`
	Errors map[string]int64 `json:"errors_by_code,omitempty"`
	// Unknown is frames that named no message of this run.
	Unknown int64 `json:"unknown_frames"`
	// DeliveredInWindow and AcceptedInWindow count what happened before
	// the send window's end, for throughput.
	DeliveredInWindow int64 `json:"-"`
	AcceptedInWindow  int64 `json:"-"`
}

// Latencies are the histograms of a report, from the send of a message.
type Latencies struct {
	// Accept is send → 100.
	Accept hist.Histogram
	// Deliver is send → first delivery (to the first member for a group).
	Deliver hist.Histogram
	// Receipt is send → 300.
	Receipt hist.Histogram
	// FanoutLast is send → the last member's delivery of a group message
	// that reached every member.
	FanoutLast hist.Histogram
	// Member is send → each member's delivery of a group message.
	Member hist.Histogram
}

// Tally computes the totals and histograms. windowEnd is the end of the
// send window: what happened by then counts for throughput.
func (l *Ledger) Tally(windowEnd time.Time) (Totals, *Latencies) {
	var t Totals
	lat := &Latencies{}
	end := l.since(windowEnd)
	for i := range l.streams {
		st := &l.streams[i]
		st.mu.Lock()
		if st.each != nil {
			lat.Member.Merge(st.each)
		}
		for _, r := range st.recs {
			t.Sent++
			sent := r.sent
			if r.accepted != 0 {
				t.Accepted++
				lat.Accept.Record(time.Duration(r.accepted - sent))
				if r.accepted <= end {
					t.AcceptedInWindow++
				}
			}
			if r.errCode != 0 {
				t.Failed++
			}
			if r.accepted == 0 && r.errCode == 0 {
				t.Unanswered++
			}
			t.Deliveries += int64(r.deliveries)
			t.Duplicates += int64(r.deliveries - r.members)
			if r.delivered != 0 {
				lat.Deliver.Record(time.Duration(r.delivered - sent))
			}
			full := r.members >= l.fanout
			if full {
				t.Delivered++
				if r.lastDelivered <= end {
					t.DeliveredInWindow++
				}
				if l.fanout > 1 {
					lat.FanoutLast.Record(time.Duration(r.lastDelivered - sent))
				}
			}
			if r.accepted != 0 && !full {
				t.Lost++
				if r.members > 0 {
					t.Partial++
				}
			}
			if r.receipts > 0 {
				t.Receipts++
				t.DupReceipts += int64(r.receipts - 1)
				lat.Receipt.Record(time.Duration(r.receipt - sent))
			} else if full {
				t.NoReceipt++
			}
		}
		st.mu.Unlock()
	}
	t.Unknown = l.unknown.Load()
	l.errMu.Lock()
	if len(l.errCodes) > 0 {
		t.Errors = make(map[string]int64, len(l.errCodes))
		for _, c := range slices.Sorted(maps.Keys(l.errCodes)) {
			t.Errors[strconv.Itoa(c)] = l.errCodes[c]
		}
	}
	l.errMu.Unlock()
	return t, lat
}
