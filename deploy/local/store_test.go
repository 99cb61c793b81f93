package main

import (
	"io"
	"runtime/debug"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestStoreKeepsQueuedDataAcrossRestarts is what `make run` relies on
// without REDIS_URL: the store reopened on its directory has what was
// written before.
func TestStoreKeepsQueuedDataAcrossRestarts(t *testing.T) {
	old := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(old) })
	dir := t.TempDir()
	noEnv := func(string) string { return "" }

	s, err := startStore(dir, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := debug.SetGCPercent(100); got != storeGCPercent {
		t.Fatalf("GC percent with GOGC unset = %d, want %d", got, storeGCPercent)
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	if err := c.RPush(t.Context(), "queue", "m1", "m2").Err(); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = startStore(dir, func(k string) string {
		if k == "GOGC" {
			return "100"
		}
		return ""
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GC percent with GOGC set = %d, want it left alone", got)
	}
	c = redis.NewClient(&redis.Options{Addr: s.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	got, err := c.LRange(t.Context(), "queue", 0, -1).Result()
	if err != nil || len(got) != 2 || got[0] != "m1" || got[1] != "m2" {
		t.Fatalf("after a restart: %v, %v", got, err)
	}
}
