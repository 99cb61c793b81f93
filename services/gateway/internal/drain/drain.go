// Package drain closes many things gradually. A gateway that closes all of
// its connections at once sends every client reconnecting in the same
// instant to the remaining gateways; closing them in batches spreads that
// storm over a second or two, the way nats-server's lame-duck mode does.
package drain

import (
	"context"
	"fmt"
	"time"
)

// InBatches calls closeFn for every item, batch items at a time with
// interval between batches. When ctx ends first it closes the rest at once
// and returns ctx's error, so a bounded shutdown still closes everything.
func InBatches[T any](ctx context.Context, items []T, batch int, interval time.Duration, closeFn func(T)) error {
	if batch <= 0 {
		batch = len(items)
	}
	t := time.NewTimer(interval)
	defer t.Stop()
	for start := 0; start < len(items); start += batch {
		if start > 0 {
			t.Reset(interval)
			select {
			case <-t.C:
			case <-ctx.Done():
				for _, it := range items[start:] {
					closeFn(it)
				}
				return fmt.Errorf("drain: %d of %d left when cut short: %w", len(items)-start, len(items), ctx.Err())
			}
		}
		for _, it := range items[start:min(start+batch, len(items))] {
			closeFn(it)
		}
	}
	return nil
}
