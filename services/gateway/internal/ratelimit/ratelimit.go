// Package ratelimit bounds how fast each user may send data messages
// through one gateway: a token bucket per user, shared by all the user's
// connections here, so opening more sockets does not buy more rate.
package ratelimit

import (
	"sync"
	"time"
)

// Options configure a Limiter.
type Options struct {
	// Rate is the sustained data messages per second per user.
	Rate float64
	// Burst is how many messages may come at once after a quiet spell.
	Burst int
	// Strikes is how many refused messages within StrikeWindow make a
	// connection abusive; it is then closed.
	Strikes int
	// StrikeWindow is the span Strikes are counted over.
	StrikeWindow time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Verdict is what to do with one message.
type Verdict int

const (
	// Allow routes the message.
	Allow Verdict = iota
	// Refuse answers the message with the rate-limit error and drops it.
	Refuse
	// Close refuses the message and closes the connection: the sender
	// keeps going well past the limit.
	Close
)

// Limiter holds one bucket per user. It is safe for concurrent use.
type Limiter struct {
	opts  Options
	mu    sync.Mutex
	users map[string]*bucket
	calls int
}

type bucket struct {
	tokens float64
	last   time.Time
}

// New returns a Limiter; Rate ≤ 0 turns limiting off.
func New(opts Options) *Limiter {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Burst < 1 {
		opts.Burst = 1
	}
	return &Limiter{opts: opts, users: make(map[string]*bucket)}
}

// sweepEvery is how many calls pass between removals of idle buckets.
const sweepEvery = 4096

// Take spends one token of user's bucket and reports whether the message
// may go.
func (l *Limiter) Take(user string) bool {
	if l.opts.Rate <= 0 {
		return true
	}
	now := l.opts.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.calls++; l.calls%sweepEvery == 0 {
		l.sweep(now)
	}
	b, ok := l.users[user]
	if !ok {
		b = &bucket{tokens: float64(l.opts.Burst), last: now}
		l.users[user] = b
	}
	b.tokens = min(float64(l.opts.Burst), b.tokens+now.Sub(b.last).Seconds()*l.opts.Rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// sweep drops buckets that have refilled: a new bucket is the same.
func (l *Limiter) sweep(now time.Time) {
	full := time.Duration(float64(l.opts.Burst) / l.opts.Rate * float64(time.Second))
	for u, b := range l.users {
		if now.Sub(b.last) > full {
			delete(l.users, u)
		}
	}
}

// Users is how many buckets are held (for tests and metrics).
func (l *Limiter) Users() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.users)
}

// Strikes counts one connection's refused messages; the zero value is
// ready. It is used from the connection's reader only.
type Strikes struct {
	count int
	since time.Time
}

// Judge turns one Take result into a verdict for the connection.
func (l *Limiter) Judge(s *Strikes, allowed bool) Verdict {
	if allowed {
		return Allow
	}
	now := l.opts.Now()
	if s.count == 0 || now.Sub(s.since) > l.opts.StrikeWindow {
		s.count, s.since = 0, now
	}
	s.count++
	if l.opts.Strikes > 0 && s.count >= l.opts.Strikes {
		return Close
	}
	return Refuse
}
