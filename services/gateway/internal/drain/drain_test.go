package drain

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestInBatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		items     int
		batch     int
		cancelled bool
		wantErr   bool
	}{
		{name: "empty", items: 0, batch: 3},
		{name: "one batch", items: 3, batch: 3},
		{name: "several batches", items: 10, batch: 3},
		{name: "zero batch means all at once", items: 5, batch: 0},
		{name: "cut short closes the rest", items: 10, batch: 2, cancelled: true, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			items := make([]int, tt.items)
			for i := range items {
				items[i] = i
			}
			ctx := t.Context()
			interval := time.Millisecond
			if tt.cancelled {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				cancel()
				interval = time.Hour
			}
			var got []int
			err := InBatches(ctx, items, tt.batch, interval, func(i int) { got = append(got, i) })
			if tt.wantErr {
				require.ErrorIs(t, err, context.Canceled)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, items, append([]int{}, got...), "every item closed once, in order")
		})
	}
}
