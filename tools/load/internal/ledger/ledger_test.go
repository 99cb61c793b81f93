package ledger

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTallyDirect(t *testing.T) {
	t.Parallel()
	l := New(2, 1)
	t0 := l.base
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

	// Stream 0: a clean message, one delivered twice, one lost after its
	// 100, one refused, one never answered.
	clean := l.Sent(0, at(0))
	require.True(t, l.Accepted(0, clean, at(1)))
	require.False(t, l.Accepted(0, clean, at(2)), "a second 100 frees no window slot")
	l.Delivered(0, clean, at(3), false)
	l.Receipt(0, clean, at(4))
	l.Receipt(0, clean, at(5))

	dup := l.Sent(0, at(10))
	require.True(t, l.Accepted(0, dup, at(11)))
	l.Delivered(0, dup, at(12), false)
	l.Delivered(0, dup, at(13), false)
	require.False(t, l.Settled(true), "dup has no 300 yet")
	l.Receipt(0, dup, at(14))

	lost := l.Sent(0, at(20))
	require.True(t, l.Accepted(0, lost, at(21)))

	refused := l.Sent(1, at(30))
	require.True(t, l.Failed(1, refused, 4290, at(31)))
	require.False(t, l.Failed(1, refused, 4290, at(32)))

	_ = l.Sent(1, at(40)) // unanswered

	l.Receipt(1, 99, at(50)) // an id never sent
	l.Unknown()

	require.False(t, l.Settled(false))
	tot, lat := l.Tally(at(15))
	require.Equal(t, Totals{
		Sent: 5, Accepted: 3, Delivered: 2, Deliveries: 3, Duplicates: 1,
		Receipts: 2, DupReceipts: 1, Lost: 1, Unanswered: 1, Failed: 1,
		Errors: map[string]int64{"4290": 1}, Unknown: 2,
		DeliveredInWindow: 2, AcceptedInWindow: 2,
	}, tot)
	require.Equal(t, uint64(3), lat.Accept.Count())
	require.Equal(t, time.Millisecond, lat.Accept.Max())
	require.Equal(t, uint64(2), lat.Deliver.Count())
	require.Equal(t, 3*time.Millisecond, lat.Deliver.Max())
	require.Equal(t, 4*time.Millisecond, lat.Receipt.Max())
	require.Equal(t, uint64(0), lat.FanoutLast.Count())
}

func TestTallyGroup(t *testing.T) {
	t.Parallel()
	l := New(1, 3)
	t0 := l.base
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

	full := l.Sent(0, at(0))
	require.True(t, l.Accepted(0, full, at(1)))
	l.Delivered(0, full, at(2), false)
	l.Delivered(0, full, at(3), false)
	l.Delivered(0, full, at(3), true) // a member's second copy
	l.Delivered(0, full, at(9), false)

	partial := l.Sent(0, at(10))
	require.True(t, l.Accepted(0, partial, at(11)))
	l.Delivered(0, partial, at(12), false)
	require.False(t, l.Settled(false))

	tot, lat := l.Tally(at(100))
	require.Equal(t, int64(1), tot.Delivered)
	require.Equal(t, int64(1), tot.Lost)
	require.Equal(t, int64(1), tot.Partial)
	require.Equal(t, int64(1), tot.Duplicates)
	require.Equal(t, int64(5), tot.Deliveries)
	require.Equal(t, 9*time.Millisecond, lat.FanoutLast.Max())
	require.Equal(t, 2*time.Millisecond, lat.Deliver.Min(), "first member")
	require.Equal(t, uint64(4), lat.Member.Count(), "every member's first copy")
	require.Equal(t, 9*time.Millisecond, lat.Member.Max())
}

func TestSettled(t *testing.T) {
	t.Parallel()
	l := New(1, 1)
	require.True(t, l.Settled(true), "nothing sent")
	s := l.Sent(0, time.Now())
	l.Accepted(0, s, time.Now())
	l.Delivered(0, s, time.Now(), false)
	require.True(t, l.Settled(false))
	require.False(t, l.Settled(true))
	l.Receipt(0, s, time.Now())
	require.True(t, l.Settled(true))
	f := l.Sent(0, time.Now())
	require.False(t, l.Settled(true))
	l.Failed(0, f, 4006, time.Now())
	require.True(t, l.Settled(true))
}
