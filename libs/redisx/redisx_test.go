package redisx

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/bachata-chat/bachata/libs/testkit"
)

func TestErrorMetricsCountFailuresOnly(t *testing.T) {
	t.Parallel()
	r := testkit.StartRedis(t, testkit.RedisOptions{})
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	c, err := Open(t.Context(), r.URL(), WithMetrics(m), WithTracing())
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })

	ctx := t.Context()
	require.ErrorIs(t, c.Get(ctx, "missing").Err(), redis.Nil)                       // a nil reply is no error
	require.NoError(t, redis.NewScript(`return 1`).Run(ctx, c, []string{"k"}).Err()) // NOSCRIPT first, then EVAL
	require.Error(t, c.Do(ctx, "INCR", "k", "extra").Err())                          // a real error reply
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	require.Error(t, c.Get(cctx, "x").Err()) // the caller gave up: not Redis's fault

	require.InDelta(t, 1, testutil.ToFloat64(m.errors.WithLabelValues("incr")), 0)
	require.Equal(t, 2, testutil.CollectAndCount(m.errors), "only INCR failed (evalsha starts at zero)")
	require.Zero(t, testutil.ToFloat64(m.errors.WithLabelValues("evalsha")))
}
