package lease

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/bachata-chat/bachata/libs/natsx"
	"github.com/bachata-chat/bachata/libs/testkit"
	eventsv1 "github.com/bachata-chat/bachata/proto/gen/go/bachata/events/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor is the generous deadline for anything the tests poll for; the
// tests assert that things happen, never how fast.
const waitFor = 15 * time.Second

// servers are one real Redis and one embedded NATS server; tests sharing
// them stay apart through unique prefixes (env).
type servers struct {
	redis *testkit.Redis
	nats  *testkit.NATS
	rdb   redis.UniversalClient
}

func startServers(t *testing.T) *servers {
	t.Helper()
	r := testkit.StartRedis(t, testkit.RedisOptions{})
	return &servers{redis: r, nats: testkit.StartNATS(t), rdb: r.Client()}
}

// env is one test's view: its own key and subject prefix, a publishing
// connection for its trackers and a subscribing one for its assertions.
type env struct {
	*servers
	prefix   string
	subjects natsx.Subjects
	pub, sub *nats.Conn
}

func newEnv(t *testing.T, s *servers) *env {
	t.Helper()
	var b [6]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	prefix := "t" + hex.EncodeToString(b[:])
	return &env{servers: s, prefix: prefix, subjects: natsx.Subjects{Prefix: prefix}, pub: s.nats.Conn(), sub: s.nats.Conn()}
}

// tracker returns a Tracker of this env with its own metrics registry.
func (e *env) tracker(t *testing.T, claimTimeout time.Duration) *Tracker {
	t.Helper()
	tr, err := New(e.rdb, e.pub, Options{
		Prefix:       e.prefix,
		Subjects:     e.subjects,
		ClaimTimeout: claimTimeout,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registerer:   prometheus.NewRegistry(),
	})
	require.NoError(t, err)
	return tr
}

// feed is a subscription whose messages the test reads in order. It is a
// channel subscription on purpose: the connection's reader puts each message
// on the channel before it reads the next, so once a Flush of the
// subscribing connection returns, everything published before is there.
type feed[T proto.Message] struct {
	ch     chan *nats.Msg
	decode func(t *testing.T, m *nats.Msg) T
}

func subscribe[T proto.Message](t *testing.T, nc *nats.Conn, subject string, decode func(t *testing.T, m *nats.Msg) T) *feed[T] {
	t.Helper()
	f := &feed[T]{ch: make(chan *nats.Msg, 4096), decode: decode}
	sub, err := nc.ChanSubscribe(subject, f.ch)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, nc.Flush())
	return f
}

// next waits for the next message.
func (f *feed[T]) next(t *testing.T) T {
	t.Helper()
	select {
	case m := <-f.ch:
		return f.decode(t, m)
	case <-time.After(waitFor):
		t.Fatalf("no event within %s", waitFor)
		var zero T
		return zero
	}
}

// rest returns what has arrived and not been read; call settle first.
func (f *feed[T]) rest(t *testing.T) []T {
	t.Helper()
	var out []T
	for {
		select {
		case m := <-f.ch:
			out = append(out, f.decode(t, m))
		default:
			return out
		}
	}
}

// presenceEvents subscribes to every presence change of this env, checking
// that each arrives on its user's subject.
func (e *env) presenceEvents(t *testing.T) *feed[*eventsv1.PresenceChanged] {
	t.Helper()
	return subscribe(t, e.sub, e.subjects.PresenceChangedAll(), func(t *testing.T, m *nats.Msg) *eventsv1.PresenceChanged {
		var ev eventsv1.PresenceChanged
		require.NoError(t, proto.Unmarshal(m.Data, &ev))
		require.Equal(t, e.subjects.PresenceChanged(natsx.UserToken(ev.GetUser())), m.Subject, "subject of %s", ev.GetUser())
		return &ev
	})
}

// gatewayDowns subscribes to every GatewayDown of this env.
func (e *env) gatewayDowns(t *testing.T) *feed[*eventsv1.GatewayDown] {
	t.Helper()
	return subscribe(t, e.sub, e.subjects.GatewayDown(), func(t *testing.T, m *nats.Msg) *eventsv1.GatewayDown {
		var ev eventsv1.GatewayDown
		require.NoError(t, proto.Unmarshal(m.Data, &ev))
		return &ev
	})
}

// settle makes everything published so far readable: the publisher's
// flush means the server has it, the subscriber's that it was delivered.
func (e *env) settle(t *testing.T) {
	t.Helper()
	require.NoError(t, e.pub.Flush())
	require.NoError(t, e.sub.Flush())
}

// change is a presence event as the tables spell it.
type change struct {
	user   string
	online bool
}

func changes(evs []*eventsv1.PresenceChanged) []change {
	var out []change
	for _, ev := range evs {
		out = append(out, change{user: ev.GetUser(), online: ev.GetOnline()})
	}
	return out
}

func redisZ(score float64, member string) redis.Z { return redis.Z{Score: score, Member: member} }
