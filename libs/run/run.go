// Package run starts a service's long-running parts together and stops them
// together: the first part to fail, or the end of the context, stops all of
// them, and Run returns once every part has returned.
package run

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"
)

// Part is a named piece of a service that runs until its context ends.
type Part struct {
	// Name says which part failed in the returned error.
	Name string
	// Run blocks until ctx ends or the part fails; it returns nil on a clean
	// stop.
	Run func(ctx context.Context) error
}

// All runs parts until ctx ends or one fails, and returns the first error.
func All(ctx context.Context, parts ...Part) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range parts {
		g.Go(func() error {
			if err := p.Run(gctx); err != nil {
				return fmt.Errorf("%s: %w", p.Name, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	return nil
}
