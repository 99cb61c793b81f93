package lease

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func TestSessions(t *testing.T) {
	t.Parallel()
	s := startServers(t)

	t.Run("a new key is issued, resumed by its device and replaced by anything else", func(t *testing.T) {
		t.Parallel()
		tr := newEnv(t, s).tracker(t, 0)
		ctx := t.Context()
		first, err := tr.OpenSession(ctx, "@alice@localhost", "phone", "")
		require.NoError(t, err)
		require.False(t, first.Resumed)
		require.True(t, wellFormedSessionKey(first.Key), first.Key)

		again, err := tr.OpenSession(ctx, "@alice@localhost", "phone", first.Key)
		require.NoError(t, err)
		require.Equal(t, Session{Key: first.Key, Resumed: true}, again)

		// Another device of the same user, or another user, cannot take it.
		other, err := tr.OpenSession(ctx, "@alice@localhost", "laptop", first.Key)
		require.NoError(t, err)
		require.False(t, other.Resumed)
		require.NotEqual(t, first.Key, other.Key)
		stranger, err := tr.OpenSession(ctx, "@mallory@localhost", "phone", first.Key)
		require.NoError(t, err)
		require.False(t, stranger.Resumed)

		// A key that is not the current one gets a new session, and from
		// then on the old key is gone for good.
		fresh, err := tr.OpenSession(ctx, "@alice@localhost", "phone", "")
		require.NoError(t, err)
		require.NotEqual(t, first.Key, fresh.Key)
		stale, err := tr.OpenSession(ctx, "@alice@localhost", "phone", first.Key)
		require.NoError(t, err)
		require.False(t, stale.Resumed)
	})

	t.Run("malformed keys are a new session, not an error", func(t *testing.T) {
		t.Parallel()
		tr := newEnv(t, s).tracker(t, 0)
		for _, bad := range []string{"x", "not base64url!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!", string(make([]byte, 4096))} {
			got, err := tr.OpenSession(t.Context(), "@alice@localhost", "phone", bad)
			require.NoError(t, err)
			require.False(t, got.Resumed)
			require.NotEqual(t, bad, got.Key)
		}
	})

	t.Run("only a digest of the key is stored", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, s)
		tr := e.tracker(t, 0)
		got, err := tr.OpenSession(t.Context(), "@alice@localhost", "phone", "")
		require.NoError(t, err)
		stored, err := e.rdb.Get(t.Context(), tr.keys.session("@alice@localhost", "phone")).Result()
		require.NoError(t, err)
		require.Equal(t, digest(got.Key), stored)
		require.NotContains(t, stored, got.Key)
	})

	t.Run("a key expires after its TTL and a disconnect starts the TTL again", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, s)
		tr, err := New(e.rdb, e.pub, Options{
			Prefix: e.prefix, Subjects: e.subjects, SessionTTL: time.Hour,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry(),
		})
		require.NoError(t, err)
		ctx := t.Context()
		key := tr.keys.session("@alice@localhost", "phone")
		got, err := tr.OpenSession(ctx, "@alice@localhost", "phone", "")
		require.NoError(t, err)
		ttl, err := e.rdb.PTTL(ctx, key).Result()
		require.NoError(t, err)
		require.Greater(t, ttl, 59*time.Minute)

		// Shorten it by hand, then a disconnect restores the full TTL.
		require.NoError(t, e.rdb.PExpire(ctx, key, time.Minute).Err())
		c := Connection{User: "@alice@localhost", Device: "phone", Gateway: "gw1", ID: "c1"}
		_, err = tr.Heartbeat(ctx, c.Gateway, 0)
		require.NoError(t, err)
		require.NoError(t, tr.Connect(ctx, c))
		require.NoError(t, tr.Disconnect(ctx, c))
		ttl, err = e.rdb.PTTL(ctx, key).Result()
		require.NoError(t, err)
		require.Greater(t, ttl, 59*time.Minute)

		// A gateway that dies without disconnecting: its sweep starts the
		// TTL again too.
		require.NoError(t, e.rdb.PExpire(ctx, key, time.Minute).Err())
		require.NoError(t, tr.Connect(ctx, c))
		require.NoError(t, tr.Release(ctx, c.Gateway))
		swept, err := tr.Sweep(ctx)
		require.NoError(t, err)
		require.Equal(t, 1, swept)
		ttl, err = e.rdb.PTTL(ctx, key).Result()
		require.NoError(t, err)
		require.Greater(t, ttl, 59*time.Minute)

		// Gone from the store, the key cannot be resumed.
		require.NoError(t, e.rdb.Del(ctx, key).Err())
		after, err := tr.OpenSession(ctx, "@alice@localhost", "phone", got.Key)
		require.NoError(t, err)
		require.False(t, after.Resumed)
	})
}
