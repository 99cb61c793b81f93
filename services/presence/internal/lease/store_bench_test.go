package lease

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/bachata-chat/bachata/libs/natsx"
	"github.com/bachata-chat/bachata/libs/testkit"
)

// presenceStore is the core write of presence on one store: record a
// device's connection atomically and learn whether its user came online,
// and take it away and learn whether the user went offline; both also
// keep the gateway's list of connections that a sweep reads.
type presenceStore interface {
	connect(ctx context.Context, c Connection, epoch string, nowMs int64) (cameOnline bool, err error)
	disconnect(ctx context.Context, c Connection, epoch string, nowMs int64) (wentOffline bool, err error)
}

// BenchmarkConnectStore compares that write on Redis and on NATS
// JetStream KV, to decide where presence state lives. One op is a connect
// and then a disconnect of one device of a user who has no other (both
// change presence); users are distinct, so nothing contends. Run it at a
// fixed count:
//
//	go test -run='^$' -bench=BenchmarkConnectStore -benchtime=10000x ./internal/lease/
//
// redis-scripts is connect.lua/disconnect.lua and the gateway set (SADD,
// SREM); redis-tracker is the whole Tracker.Connect/Disconnect with its
// lease checks, session touch and events. kv-* keep one value per user
// (devices and last seen, updated by revision: get, then update if still
// that revision, retried on conflict) and one key per connection for the
// gateway, in a memory or a file bucket.
func BenchmarkConnectStore(b *testing.B) {
	r := testkit.StartRedis(b, testkit.RedisOptions{})
	n := testkit.StartNATS(b)
	sent := newSentCounter()
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr(), PoolSize: 64})
	rdb.AddHook(sent)
	b.Cleanup(func() { _ = rdb.Close() })
	nc := n.Conn()
	tr, err := New(rdb, nc, Options{
		Prefix: "bench", Subjects: natsx.Subjects{Prefix: "bench"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	if _, err := tr.Heartbeat(ctx, "gw", MaxLease); err != nil {
		b.Fatal(err)
	}
	epoch, err := tr.leaseEpoch(ctx, opConnect, "gw")
	if err != nil {
		b.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	bucket := func(name string, storage jetstream.StorageType) *kvStore {
		kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: name, History: 1, Storage: storage})
		if err != nil {
			b.Fatal(err)
		}
		return &kvStore{kv: kv}
	}
	stores := []struct {
		name  string
		store presenceStore
		// trips counts round trips so far.
		trips func() int64
	}{
		{"redis-scripts", &redisStore{rdb: rdb, keys: tr.keys}, func() int64 { _, t := sent.snapshot(); return t }},
		{"redis-tracker", trackerStore{tr}, func() int64 { _, t := sent.snapshot(); return t }},
		{"kv-memory", bucket("presence_mem", jetstream.MemoryStorage), nil},
		{"kv-file", bucket("presence_file", jetstream.FileStorage), nil},
	}
	for si, st := range stores {
		if kv, ok := st.store.(*kvStore); ok {
			stores[si].trips = kv.trips.Load
		}
	}
	for _, st := range stores {
		for _, par := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/par=%d", st.name, par), func(b *testing.B) {
				trips0 := st.trips()
				start := time.Now()
				err := forEach(ctx, b.N, par, func(i int) error {
					c := Connection{User: "@s" + strconv.Itoa(i) + "@localhost", Device: "phone", Gateway: "gw", ID: "c" + strconv.Itoa(i)}
					now := time.Now().UnixMilli()
					online, err := st.store.connect(ctx, c, epoch, now)
					if err != nil {
						return err
					}
					offline, err := st.store.disconnect(ctx, c, epoch, now)
					if err != nil {
						return err
					}
					if !online || !offline {
						return fmt.Errorf("%s: online %v, offline %v: want both", c.User, online, offline)
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				ops := float64(2 * b.N)
				b.ReportMetric(ops/time.Since(start).Seconds(), "ops/s")
				b.ReportMetric(float64(st.trips()-trips0)/ops, "round-trips/op")
			})
		}
	}
}

// redisStore is the Redis write without the Tracker around it.
type redisStore struct {
	rdb  redis.UniversalClient
	keys keys
}

func (s *redisStore) connect(ctx context.Context, c Connection, epoch string, nowMs int64) (bool, error) {
	if err := s.rdb.SAdd(ctx, s.keys.conns(c.Gateway, epoch), c.member()).Err(); err != nil {
		return false, err
	}
	res, err := connectScript.Run(ctx, s.rdb, []string{s.keys.devs(c.User), s.keys.seen(c.User)},
		c.Device, c.Gateway, c.ID, epoch, nowMs).Slice()
	if err != nil {
		return false, err
	}
	online, _, err := parseConnectResult(res)
	return online, err
}

func (s *redisStore) disconnect(ctx context.Context, c Connection, epoch string, nowMs int64) (bool, error) {
	res, err := disconnectScript.Run(ctx, s.rdb, []string{s.keys.devs(c.User), s.keys.seen(c.User)},
		c.Device, c.Gateway, c.ID, epoch, nowMs).Slice()
	if err != nil {
		return false, err
	}
	_, offline, _, err := parseDisconnectResult(res)
	if err != nil {
		return false, err
	}
	return offline, s.rdb.SRem(ctx, s.keys.conns(c.Gateway, epoch), c.member()).Err()
}

// trackerStore is the service's whole path; it has no result to report,
// and the users are offline between ops, so both changes happen.
type trackerStore struct{ tr *Tracker }

func (s trackerStore) connect(ctx context.Context, c Connection, _ string, _ int64) (bool, error) {
	return true, s.tr.Connect(ctx, c)
}

func (s trackerStore) disconnect(ctx context.Context, c Connection, _ string, _ int64) (bool, error) {
	return true, s.tr.Disconnect(ctx, c)
}

// kvStore is the same write on a JetStream KV bucket. KV has no multi-key
// transaction and no sets, so the user's devices and last seen share one
// value changed by revision (compare and set), and the gateway's
// connections are one key each, written apart from the user's value:
// that is a window the Redis scripts do not have.
type kvStore struct {
	kv jetstream.KeyValue
	// trips counts requests to the server; conflicts, updates that lost a
	// race and were retried.
	trips, conflicts atomic.Int64
}

// kvUser is a user's value in the bucket.
type kvUser struct {
	// Devices maps device → gateway␟connection␟epoch␟since_ms.
	Devices map[string]string `json:"d,omitempty"`
	// SeenMs is the last time the user was seen, Unix ms.
	SeenMs int64 `json:"s,omitempty"`
}

func (s *kvStore) userKey(user string) string { return "u." + natsx.UserToken(user) }

// connKey is the connection's key under its gateway and epoch: a sweep
// would list "g.<gateway>.<epoch>.>".
func (s *kvStore) connKey(c Connection, epoch string) string {
	sum := sha256.Sum256([]byte(c.member()))
	return "g." + c.Gateway + "." + epoch + "." + hex.EncodeToString(sum[:16])
}

func (s *kvStore) connect(ctx context.Context, c Connection, epoch string, nowMs int64) (bool, error) {
	s.trips.Add(1)
	if _, err := s.kv.Put(ctx, s.connKey(c, epoch), []byte(c.member())); err != nil {
		return false, fmt.Errorf("kv put connection: %w", err)
	}
	var online bool
	err := s.update(ctx, c.User, func(u *kvUser) bool {
		online = len(u.Devices) == 0
		if online && nowMs > u.SeenMs {
			u.SeenMs = nowMs
		}
		u.Devices[c.Device] = c.Gateway + sep + c.ID + sep + epoch + sep + strconv.FormatInt(nowMs, 10)
		return true
	})
	return online, err
}

func (s *kvStore) disconnect(ctx context.Context, c Connection, epoch string, nowMs int64) (bool, error) {
	var offline bool
	err := s.update(ctx, c.User, func(u *kvUser) bool {
		cur, ok := u.Devices[c.Device]
		if !ok {
			return false
		}
		e, err := parseEntry(cur)
		if err != nil || e.gateway != c.Gateway || e.conn != c.ID {
			return false
		}
		delete(u.Devices, c.Device)
		offline = len(u.Devices) == 0
		if offline && nowMs > u.SeenMs {
			u.SeenMs = nowMs
		}
		return true
	})
	if err != nil {
		return false, err
	}
	s.trips.Add(1)
	if err := s.kv.Delete(ctx, s.connKey(c, epoch)); err != nil {
		return false, fmt.Errorf("kv delete connection: %w", err)
	}
	return offline, nil
}

// update reads the user's value, applies change, and writes it back if
// nobody wrote in between, retrying otherwise.
func (s *kvStore) update(ctx context.Context, user string, change func(*kvUser) bool) error {
	key := s.userKey(user)
	for range 100 {
		var u kvUser
		var rev uint64
		s.trips.Add(1)
		e, err := s.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("kv get user: %w", err)
		default:
			if err := json.Unmarshal(e.Value(), &u); err != nil {
				return fmt.Errorf("kv user value: %w", err)
			}
			rev = e.Revision()
		}
		if u.Devices == nil {
			u.Devices = make(map[string]string)
		}
		if !change(&u) {
			return nil
		}
		v, err := json.Marshal(&u)
		if err != nil {
			return fmt.Errorf("kv user value: %w", err)
		}
		s.trips.Add(1)
		if rev == 0 {
			_, err = s.kv.Create(ctx, key, v)
		} else {
			_, err = s.kv.Update(ctx, key, v, rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			s.conflicts.Add(1)
			continue
		}
		if err != nil {
			return fmt.Errorf("kv write user: %w", err)
		}
		return nil
	}
	return fmt.Errorf("kv update %s: too many conflicts", user)
}

// BenchmarkGatewayScan compares the read a sweep starts with: every
// connection a dead gateway held (5,000 here), from the gateway's Redis set
// (SSCAN, as sweepGateway does) or from its keys in a KV bucket (a watch
// on "g.<gateway>.<epoch>.>", which is an ordered consumer per sweep).
//
//	go test -run='^$' -bench=BenchmarkGatewayScan -benchtime=50x ./internal/lease/
func BenchmarkGatewayScan(b *testing.B) {
	const conns = 5000
	r := testkit.StartRedis(b, testkit.RedisOptions{})
	n := testkit.StartNATS(b)
	rdb := r.Client()
	ctx := b.Context()
	k := newKeys("bench")
	js, err := jetstream.New(n.Conn())
	if err != nil {
		b.Fatal(err)
	}
	members := make([]any, conns)
	for i := range members {
		members[i] = Connection{User: "@s" + strconv.Itoa(i) + "@localhost", Device: "phone", ID: "c" + strconv.Itoa(i)}.member()
	}
	if err := rdb.SAdd(ctx, k.conns("gw", "1"), members...).Err(); err != nil {
		b.Fatal(err)
	}
	b.Run("redis", func(b *testing.B) {
		for b.Loop() {
			seen := 0
			var cursor uint64
			for {
				ms, next, err := rdb.SScan(ctx, k.conns("gw", "1"), cursor, "", scanBatch).Result()
				if err != nil {
					b.Fatal(err)
				}
				seen += len(ms)
				if cursor = next; cursor == 0 {
					break
				}
			}
			if seen < conns {
				b.Fatalf("scanned %d connections, want %d", seen, conns)
			}
		}
	})
	for _, st := range []jetstream.StorageType{jetstream.MemoryStorage, jetstream.FileStorage} {
		name := map[jetstream.StorageType]string{jetstream.MemoryStorage: "kv-memory", jetstream.FileStorage: "kv-file"}[st]
		kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "scan_" + strings.ReplaceAll(name, "-", "_"), History: 1, Storage: st})
		if err != nil {
			b.Fatal(err)
		}
		s := &kvStore{kv: kv}
		for i := range conns {
			c := Connection{User: "@s" + strconv.Itoa(i) + "@localhost", Device: "phone", Gateway: "gw", ID: "c" + strconv.Itoa(i)}
			if _, err := kv.Put(ctx, s.connKey(c, "1"), []byte(c.member())); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				w, err := kv.Watch(ctx, "g.gw.1.>", jetstream.IgnoreDeletes())
				if err != nil {
					b.Fatal(err)
				}
				seen := 0
				for e := range w.Updates() {
					if e == nil { // the end of what was stored
						break
					}
					seen++
				}
				if err := w.Stop(); err != nil {
					b.Fatal(err)
				}
				if seen < conns {
					b.Fatalf("watched %d connections, want %d", seen, conns)
				}
			}
		})
	}
}
