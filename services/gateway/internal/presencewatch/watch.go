// Package presencewatch delivers presence changes to the connections of
// this gateway that subscribed to them (presence.subscribe). The gateway
// listens on NATS only for the users its own connections watch, one
// subject per user, so an event reaches only the gateways that hold a
// subscriber, never all of them.
//
// Changes of one user are coalesced: after a change is sent, the next one
// waits until Options.Coalesce has passed; then the gateway asks presence
// for the user's state and sends it only if its status differs from the
// one last sent. A connection that flaps (offline and back within the
// window) is therefore never seen offline, a user's subscribers get at
// most one event per window whatever the churn, and events that arrive
// out of order (presence instances publish independently) end in the
// state presence holds.
package presencewatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/bachata-chat/bachata/libs/natsx"
	eventsv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/events/v1"
)

// ErrTooMany is returned by Subscribe when the subscriber would watch more
// users than Options.MaxPerSubscriber.
var ErrTooMany = errors.New("too many presence subscriptions")

// State is a user's presence.
type State struct {
	// User is the entity ID.
	User string
	// Online is true while any device of the user is connected.
	Online bool
	// LastSeenMs is when the user was last seen online (Unix ms): when the
	// last device left, or came, for an online user; 0 if never.
	LastSeenMs int64
}

// Subscriber receives the changes of the users it watches. Implementations
// must not block: PresenceChanged is called from the watcher's goroutines.
type Subscriber interface {
	PresenceChanged(State)
}

// Options configures a Watcher.
type Options struct {
	// NATS carries the presence events; required.
	NATS *nats.Conn
	// Subjects names them.
	Subjects natsx.Subjects
	// Query returns the current state of users, in order; required. It is
	// asked only for users no subscriber here watches yet.
	Query func(ctx context.Context, users []string) ([]State, error)
	// Coalesce is the shortest time between two events of one user; default
	// 1s.
	Coalesce time.Duration
	// MaxPerSubscriber bounds the users one subscriber watches; default 1000.
	MaxPerSubscriber int
	// Logger receives the watcher's logs; required.
	Logger *slog.Logger
	// Registerer receives the watcher's metrics; required.
	Registerer prometheus.Registerer
}

// Watcher fans presence events out to subscribers. It is safe for
// concurrent use.
type Watcher struct {
	opts Options
	// ctx bounds the watcher's own queries; Close cancels it.
	ctx     context.Context
	cancel  context.CancelFunc
	metrics *metrics
	events  chan *nats.Msg
	done    chan struct{}
	stopped sync.WaitGroup

	mu    sync.Mutex
	users map[string]*watched
	subs  map[Subscriber]map[string]struct{}
	// timers counts coalescing timers that may still fire, so Close waits
	// for them.
	timers sync.WaitGroup
	closed bool
}

// watched is one user that at least one subscriber here watches.
type watched struct {
	sub         *nats.Subscription
	subscribers map[Subscriber]struct{}
	// current is the latest state known; known is false until the first
	// query answer or event.
	current State
	known   bool
	// told is the state subscribers were last told, and toldAt when; a
	// new subscriber is told the same, so all of them agree.
	told    State
	toldAt  time.Time
	pending bool // a coalescing timer will send current
}

// New returns a Watcher; Close stops it.
func New(opts Options) (*Watcher, error) {
	switch {
	case opts.NATS == nil:
		return nil, errors.New("presence watcher: no nats connection")
	case opts.Query == nil:
		return nil, errors.New("presence watcher: no query")
	case opts.Logger == nil:
		return nil, errors.New("presence watcher: no logger")
	case opts.Registerer == nil:
		return nil, errors.New("presence watcher: no metrics registerer")
	}
	if opts.Coalesce <= 0 {
		opts.Coalesce = time.Second
	}
	if opts.MaxPerSubscriber <= 0 {
		opts.MaxPerSubscriber = 1000
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("presence watcher: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Watcher{
		opts:    opts,
		ctx:     ctx,
		cancel:  cancel,
		metrics: m,
		// Every user's subscription feeds this one channel, read by one
		// goroutine: nats.go gives each callback subscription a goroutine
		// of its own, which thousands of watched users cannot afford.
		events: make(chan *nats.Msg, 4096),
		done:   make(chan struct{}),
		users:  make(map[string]*watched),
		subs:   make(map[Subscriber]map[string]struct{}),
	}
	w.stopped.Add(1)
	go w.run()
	return w, nil
}

// Subscribe makes sub watch users (entity IDs) and sends it the current
// state of each at once. Users it already watches are sent again.
func (w *Watcher) Subscribe(ctx context.Context, sub Subscriber, users []string) error {
	users = dedupe(users)
	var ask []string // users nobody here watched: their state is unknown
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return errors.New("presence watcher closed")
	}
	mine := w.subs[sub]
	adding := 0
	for _, u := range users {
		if _, ok := mine[u]; !ok {
			adding++
		}
	}
	if len(mine)+adding > w.opts.MaxPerSubscriber {
		w.mu.Unlock()
		return fmt.Errorf("%d users watched, %d more asked: %w (at most %d)", len(mine), adding, ErrTooMany, w.opts.MaxPerSubscriber)
	}
	if mine == nil {
		mine = make(map[string]struct{}, len(users))
		w.subs[sub] = mine
	}
	var known []State
	var added []string // undone if this call fails
	for _, u := range users {
		wu, err := w.watchLocked(u)
		if err != nil {
			w.mu.Unlock()
			w.Unsubscribe(sub, added)
			return err
		}
		if _, ok := mine[u]; !ok {
			added = append(added, u)
		}
		mine[u] = struct{}{}
		wu.subscribers[sub] = struct{}{}
		if wu.known {
			known = append(known, wu.told)
		} else {
			ask = append(ask, u)
		}
	}
	w.mu.Unlock()

	for _, st := range known {
		sub.PresenceChanged(st)
	}
	if len(ask) == 0 {
		return nil
	}
	// The NATS subscriptions exist already, so no change after this query
	// is missed; one that arrived before its answer is newer and wins.
	states, err := w.opts.Query(ctx, ask)
	if err != nil {
		w.Unsubscribe(sub, added)
		return fmt.Errorf("presence query: %w", err)
	}
	w.mu.Lock()
	answers := make([]State, 0, len(states))
	for _, st := range states {
		wu, ok := w.users[st.User]
		if !ok {
			continue // unsubscribed meanwhile
		}
		if !wu.known {
			// Subscribers of this user are told from now on; what they
			// were told is this answer.
			wu.current, wu.known = st, true
			wu.told, wu.toldAt = st, time.Now()
		}
		answers = append(answers, wu.told)
	}
	w.mu.Unlock()
	for _, st := range answers {
		sub.PresenceChanged(st)
	}
	return nil
}

// watchLocked returns the user's entry, subscribing to its events first
// if nobody here watched it.
func (w *Watcher) watchLocked(user string) (*watched, error) {
	if wu, ok := w.users[user]; ok {
		return wu, nil
	}
	s, err := w.opts.NATS.ChanSubscribe(w.opts.Subjects.PresenceChanged(natsx.UserToken(user)), w.events)
	if err != nil {
		return nil, fmt.Errorf("subscribe to presence of %s: %w", user, err)
	}
	wu := &watched{sub: s, subscribers: make(map[Subscriber]struct{})}
	w.users[user] = wu
	w.metrics.users.Inc()
	return wu, nil
}

// Unsubscribe stops sub watching users.
func (w *Watcher) Unsubscribe(sub Subscriber, users []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	mine := w.subs[sub]
	for _, u := range users {
		delete(mine, u)
		w.forgetLocked(sub, u)
	}
	if len(mine) == 0 {
		delete(w.subs, sub)
	}
}

// Drop stops sub watching anything; the gateway calls it when the
// connection closes.
func (w *Watcher) Drop(sub Subscriber) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for u := range w.subs[sub] {
		w.forgetLocked(sub, u)
	}
	delete(w.subs, sub)
}

// forgetLocked removes sub from user's subscribers, and the user's NATS
// subscription with the last one.
func (w *Watcher) forgetLocked(sub Subscriber, user string) {
	wu, ok := w.users[user]
	if !ok {
		return
	}
	delete(wu.subscribers, sub)
	if len(wu.subscribers) > 0 {
		return
	}
	if err := wu.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		w.opts.Logger.Warn("presence unsubscribe failed", "user", user, "err", err)
	}
	delete(w.users, user)
	w.metrics.users.Dec()
}

// Watching is the number of users watched by at least one subscriber.
func (w *Watcher) Watching() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.users)
}

// Close unsubscribes from everything and waits for the watcher's
// goroutines.
func (w *Watcher) Close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	for u, wu := range w.users {
		_ = wu.sub.Unsubscribe()
		delete(w.users, u)
	}
	w.subs = map[Subscriber]map[string]struct{}{}
	w.mu.Unlock()
	close(w.done)
	w.cancel()
	w.stopped.Wait()
	w.timers.Wait()
}

// run reads the events of every watched user.
func (w *Watcher) run() {
	defer w.stopped.Done()
	for {
		select {
		case <-w.done:
			return
		case m := <-w.events:
			var ev eventsv1.PresenceChanged
			if err := proto.Unmarshal(m.Data, &ev); err != nil {
				w.opts.Logger.Warn("presence event not decodable", "subject", m.Subject, "err", err)
				continue
			}
			w.apply(State{User: ev.GetUser(), Online: ev.GetOnline(), LastSeenMs: ev.GetLastSeenMs()})
		}
	}
}

// apply records a change and sends it now, or at the end of the user's
// window (see the package doc).
func (w *Watcher) apply(st State) {
	w.mu.Lock()
	wu, ok := w.users[st.User]
	if !ok || w.closed {
		w.mu.Unlock()
		return
	}
	wu.current, wu.known = st, true
	if wu.pending {
		w.mu.Unlock()
		w.metrics.events.WithLabelValues("coalesced").Inc()
		return
	}
	if st.Online == wu.told.Online {
		w.mu.Unlock()
		return // an echo of what subscribers know, such as a late event
	}
	if wait := w.opts.Coalesce - time.Since(wu.toldAt); wait > 0 {
		wu.pending = true
		w.timers.Add(1)
		time.AfterFunc(wait, func() {
			defer w.timers.Done()
			w.flush(st.User, wu)
		})
		w.mu.Unlock()
		w.metrics.events.WithLabelValues("coalesced").Inc()
		return
	}
	w.sendLocked(wu) // unlocks
}

// flush ends a user's window in which changes were held back. Events of
// one user come from independent presence instances and may arrive out
// of order, so the state sent is the one presence holds now, asked
// afresh; the last event is the fallback when presence does not answer.
// Nothing is sent when the status is what subscribers were last told: a
// flap within the window stays unseen.
func (w *Watcher) flush(user string, wu *watched) {
	ctx, cancel := context.WithTimeout(w.ctx, w.opts.Coalesce+5*time.Second)
	states, err := w.opts.Query(ctx, []string{user})
	cancel()
	w.mu.Lock()
	if w.users[user] != wu || w.closed {
		w.mu.Unlock()
		return // nobody watches it any more
	}
	wu.pending = false
	if err == nil && len(states) == 1 {
		wu.current = states[0]
	} else {
		w.opts.Logger.Warn("presence query after a burst of changes failed; sending the last event", "user", user, "err", err)
	}
	if wu.current.Online == wu.told.Online {
		w.mu.Unlock()
		return
	}
	w.sendLocked(wu)
}

// sendLocked tells every subscriber of wu its current state; it is called
// with w.mu held and releases it before calling subscribers.
func (w *Watcher) sendLocked(wu *watched) {
	wu.told, wu.toldAt = wu.current, time.Now()
	st := wu.current
	subs := make([]Subscriber, 0, len(wu.subscribers))
	for s := range wu.subscribers {
		subs = append(subs, s)
	}
	w.mu.Unlock()
	w.metrics.events.WithLabelValues("sent").Inc()
	for _, s := range subs {
		s.PresenceChanged(st)
	}
}

func dedupe(users []string) []string {
	seen := make(map[string]struct{}, len(users))
	out := users[:0:0]
	for _, u := range users {
		if _, ok := seen[u]; !ok {
			seen[u] = struct{}{}
			out = append(out, u)
		}
	}
	return out
}

type metrics struct {
	users  prometheus.Gauge
	events *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		users: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "bachata", Subsystem: "gateway", Name: "presence_watched_users",
			Help: "Users whose presence at least one connection of this gateway watches.",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bachata", Subsystem: "gateway", Name: "presence_events_total",
			Help: "Presence changes received, by what became of them (sent, coalesced).",
		}, []string{"outcome"}),
	}
	for _, o := range []string{"sent", "coalesced"} {
		m.events.WithLabelValues(o)
	}
	for _, c := range []prometheus.Collector{m.users, m.events} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}
