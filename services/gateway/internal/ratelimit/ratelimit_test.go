package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newLimiter(c *clock) *Limiter {
	return New(Options{Rate: 10, Burst: 5, Strikes: 3, StrikeWindow: time.Second, Now: c.now})
}

func TestBurstThenSustainedRate(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	l := newLimiter(c)
	for i := range 5 {
		if !l.Take("alice") {
			t.Fatalf("burst message %d refused", i)
		}
	}
	if l.Take("alice") {
		t.Fatal("message beyond the burst allowed")
	}
	if !l.Take("bob") {
		t.Fatal("another user shares alice's bucket")
	}
	c.advance(100 * time.Millisecond) // one token at 10/s
	if !l.Take("alice") || l.Take("alice") {
		t.Fatal("refill is not one token per 100ms")
	}
	c.advance(time.Hour)
	n := 0
	for l.Take("alice") {
		n++
	}
	if n != 5 {
		t.Fatalf("after a long pause %d messages went, want the burst of 5", n)
	}
}

func TestStrikesCloseOnlySustainedAbuse(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	l := newLimiter(c)
	var s Strikes
	if v := l.Judge(&s, true); v != Allow {
		t.Fatalf("allowed message judged %v", v)
	}
	for range 2 {
		if l.Judge(&s, false) != Refuse {
			t.Fatal("first refusals should not close")
		}
	}
	c.advance(2 * time.Second) // the window passed: counting starts again
	for range 2 {
		if l.Judge(&s, false) != Refuse {
			t.Fatal("strikes from an old window counted")
		}
	}
	if v := l.Judge(&s, false); v != Close {
		t.Fatalf("third refusal within the window judged %v, want Close", v)
	}
}

func TestZeroRateIsOffAndIdleBucketsAreSwept(t *testing.T) {
	if l := New(Options{}); !l.Take("x") || l.Users() != 0 {
		t.Fatal("a zero rate limits")
	}
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	l := newLimiter(c)
	for i := range sweepEvery - 1 {
		l.Take(fmt.Sprintf("user-%d", i))
	}
	c.advance(time.Minute)
	l.Take("late")
	if n := l.Users(); n != 1 {
		t.Fatalf("%d buckets after the sweep, want 1", n)
	}
}
