package main

import (
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"

	"github.com/bachata-chat/bachata/libs/embedredis"
)

// storeGCPercent is the garbage collector's target while the embedded store
// runs, unless GOGC says otherwise: every script call allocates a Lua state
// of its own, and collecting them at the default target costs the store
// about half its throughput; the heap of a development store is small.
const storeGCPercent = 400

// startStore opens the embedded store with its journal in dir: the durable,
// single-node stand-in for Redis when REDIS_URL is unset.
func startStore(dir string, getenv func(string) string, out io.Writer) (*embedredis.Server, error) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(storeGCPercent)
	}
	s, err := embedredis.Open(embedredis.Options{
		Dir:    dir,
		Logger: slog.New(slog.NewTextHandler(out, nil)).With("component", "embedded-store"),
	})
	if err != nil {
		return nil, fmt.Errorf("embedded store in %s: %w", dir, err)
	}
	return s, nil
}
