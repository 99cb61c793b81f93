// Package redisx opens Redis clients from the URLs operators configure.
package redisx

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Open returns a client for url and checks that the server answers. A
// "redis://" or "rediss://" URL opens a single server; a comma-separated list
// of host:port seeds, or a URL with the scheme "redis+cluster://host:port,…",
// opens a Redis Cluster client.
func Open(ctx context.Context, url string) (redis.UniversalClient, error) {
	var c redis.UniversalClient
	switch {
	case strings.HasPrefix(url, "redis+cluster://"):
		addrs := strings.Split(strings.TrimPrefix(url, "redis+cluster://"), ",")
		c = redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	case strings.HasPrefix(url, "redis://"), strings.HasPrefix(url, "rediss://"), strings.HasPrefix(url, "unix://"):
		opts, err := redis.ParseURL(url)
		if err != nil {
			return nil, fmt.Errorf("redis url: %w", err)
		}
		c = redis.NewClient(opts)
	default:
		return nil, fmt.Errorf("redis url %q: want redis://host:port/db or redis+cluster://host:port,host:port", url)
	}
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("redis ping %s: %w", url, err)
	}
	return c, nil
}
