package presencewatch

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/bachata-chat/bachata/libs/natsx"
	"github.com/bachata-chat/bachata/libs/testkit"
	eventsv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/events/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitFor = 10 * time.Second

// truth is what the fake presence answers to queries.
type truth struct {
	mu      sync.Mutex
	online  map[string]bool
	queries int
	fail    error
}

func (p *truth) set(user string, online bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.online[user] = online
}

func (p *truth) query(_ context.Context, users []string) ([]State, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.queries++
	if p.fail != nil {
		return nil, p.fail
	}
	out := make([]State, len(users))
	for i, u := range users {
		out[i] = State{User: u, Online: p.online[u], LastSeenMs: 1}
	}
	return out, nil
}

// inbox is a subscriber that records what it is told.
type inbox struct {
	mu  sync.Mutex
	got []State
}

func (b *inbox) PresenceChanged(s State) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got = append(b.got, s)
}

func (b *inbox) states() []State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]State(nil), b.got...)
}

type fixture struct {
	w        *Watcher
	pub      *nats.Conn
	subjects natsx.Subjects
	truth    *truth
}

func newFixture(t *testing.T, coalesce time.Duration, maxPer int) *fixture {
	t.Helper()
	srv := testkit.StartNATS(t)
	subjects := natsx.Subjects{Prefix: "pw"}
	tr := &truth{online: map[string]bool{}}
	w, err := New(Options{
		NATS: srv.Conn(), Subjects: subjects, Query: tr.query, Coalesce: coalesce, MaxPerSubscriber: maxPer,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry(),
	})
	require.NoError(t, err)
	t.Cleanup(w.Close)
	return &fixture{w: w, pub: srv.Conn(), subjects: subjects, truth: tr}
}

// publish sends a change as presence does and waits until the watcher's
// connection has seen it (a round trip through the server after it).
func (f *fixture) publish(t *testing.T, user string, online bool, lastSeen int64) {
	t.Helper()
	b, err := proto.Marshal(&eventsv1.PresenceChanged{User: user, Online: online, LastSeenMs: lastSeen})
	require.NoError(t, err)
	require.NoError(t, f.pub.Publish(f.subjects.PresenceChanged(natsx.UserToken(user)), b))
	require.NoError(t, f.pub.Flush())
	require.NoError(t, f.w.opts.NATS.Flush())
}

const bob, carol = "@bob@localhost", "@carol@localhost"

func TestSubscribersGetTheCurrentStateThenChanges(t *testing.T) {
	t.Parallel()
	f := newFixture(t, time.Millisecond, 0)
	f.truth.set(bob, true)
	alice, dave := &inbox{}, &inbox{}
	require.NoError(t, f.w.Subscribe(t.Context(), alice, []string{bob, carol, bob}))
	require.ElementsMatch(t, []State{{User: bob, Online: true, LastSeenMs: 1}, {User: carol, LastSeenMs: 1}}, alice.states())
	require.NoError(t, f.w.Subscribe(t.Context(), dave, []string{carol}))
	require.Equal(t, 1, f.truth.queries, "a user watched here already is not asked again")
	require.Equal(t, []State{{User: carol, LastSeenMs: 1}}, dave.states())

	time.Sleep(2 * time.Millisecond) // past the (1 ms) window of the answers
	f.publish(t, bob, false, 50)
	require.Eventually(t, func() bool { return len(alice.states()) == 3 }, waitFor, time.Millisecond)
	require.Equal(t, State{User: bob, LastSeenMs: 50}, alice.states()[2])
	require.Len(t, dave.states(), 1, "dave does not watch bob")
	require.Equal(t, 2, f.w.Watching())
}

func TestUnsubscribeAndDropEndTheWatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, time.Millisecond, 0)
	alice, dave := &inbox{}, &inbox{}
	require.NoError(t, f.w.Subscribe(t.Context(), alice, []string{bob, carol}))
	require.NoError(t, f.w.Subscribe(t.Context(), dave, []string{bob}))
	f.w.Unsubscribe(alice, []string{bob})
	require.Equal(t, 2, f.w.Watching(), "dave still watches bob")
	f.w.Drop(dave)
	require.Equal(t, 1, f.w.Watching())
	f.w.Drop(alice)
	require.Equal(t, 0, f.w.Watching())

	time.Sleep(2 * time.Millisecond)
	f.publish(t, bob, true, 10)
	f.publish(t, carol, true, 10)
	require.Len(t, alice.states(), 2, "only the initial states")
	require.Len(t, dave.states(), 1)
}

func TestFlappingIsCoalesced(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 300*time.Millisecond, 0)
	alice := &inbox{}
	require.NoError(t, f.w.Subscribe(t.Context(), alice, []string{bob}))
	require.Equal(t, []State{{User: bob, LastSeenMs: 1}}, alice.states())

	// Bob comes and goes ten times within the window and ends offline:
	// alice is told nothing.
	for i := range 10 {
		f.publish(t, bob, true, int64(10+2*i))
		f.publish(t, bob, false, int64(11+2*i))
	}
	require.Eventually(t, func() bool {
		f.truth.mu.Lock()
		defer f.truth.mu.Unlock()
		return f.truth.queries == 2
	}, waitFor, time.Millisecond, "the window ends with one query")
	require.Len(t, alice.states(), 1)

	// Bob comes online and stays: one event, at the end of the window.
	f.truth.set(bob, true)
	f.publish(t, bob, true, 40)
	require.Eventually(t, func() bool { return len(alice.states()) == 2 }, waitFor, time.Millisecond)
	require.True(t, alice.states()[1].Online)
	time.Sleep(400 * time.Millisecond)
	require.Len(t, alice.states(), 2, "one event per change")
}

func TestOutOfOrderEventsEndInPresencesState(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 200*time.Millisecond, 0)
	f.truth.set(bob, true)
	alice := &inbox{}
	require.NoError(t, f.w.Subscribe(t.Context(), alice, []string{bob}))
	time.Sleep(250 * time.Millisecond) // the window of the answer ends

	// Bob went offline (t=20) after coming online again (t=10), but the
	// offline event arrives first: it is sent at once, the late online
	// event waits for the window, and the window ends in presence's state.
	f.truth.set(bob, false)
	f.publish(t, bob, false, 20)
	f.publish(t, bob, true, 10)
	require.Eventually(t, func() bool {
		f.truth.mu.Lock()
		defer f.truth.mu.Unlock()
		return f.truth.queries == 2
	}, waitFor, time.Millisecond)
	time.Sleep(10 * time.Millisecond)
	got := alice.states()
	require.False(t, got[len(got)-1].Online, "alice ends seeing bob offline: %v", got)
}

func TestSubscriptionLimitsAndFailures(t *testing.T) {
	t.Parallel()
	f := newFixture(t, time.Millisecond, 2)
	alice := &inbox{}
	require.NoError(t, f.w.Subscribe(t.Context(), alice, []string{bob}))
	err := f.w.Subscribe(t.Context(), alice, []string{carol, "@dave@localhost"})
	require.ErrorIs(t, err, ErrTooMany)
	require.Equal(t, 1, f.w.Watching(), "nothing of a refused subscription stays")
	require.NoError(t, f.w.Subscribe(t.Context(), alice, []string{bob, carol}), "a user watched already does not count twice")

	other := &inbox{}
	f.truth.mu.Lock()
	f.truth.fail = errors.New("presence down")
	f.truth.mu.Unlock()
	require.Error(t, f.w.Subscribe(t.Context(), other, []string{"@erin@localhost", bob}))
	require.Equal(t, 2, f.w.Watching(), "a failed subscription is undone, alice's stay")
}
