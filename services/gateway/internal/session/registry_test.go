package session

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

type fake struct {
	key Key
	id  string
}

func (f *fake) Key() Key       { return f.key }
func (f *fake) ConnID() string { return f.id }

func TestRegistry(t *testing.T) {
	t.Parallel()
	r := New[*fake]()
	phone := Key{User: "@alice@localhost", Device: "phone"}
	first := &fake{key: phone, id: "c1"}
	second := &fake{key: phone, id: "c2"}
	other := &fake{key: Key{User: "@alice@localhost", Device: "laptop"}, id: "c3"}

	_, ok := r.Add(first)
	require.False(t, ok)
	_, ok = r.Add(other)
	require.False(t, ok)

	got, ok := r.Get(phone, "c1")
	require.True(t, ok)
	require.Same(t, first, got)

	replaced, ok := r.Add(second)
	require.True(t, ok, "a newer connection of the device replaces the older")
	require.Same(t, first, replaced)

	_, ok = r.Get(phone, "c1")
	require.False(t, ok, "a delivery for the replaced connection is stale")
	got, ok = r.Get(phone, "c2")
	require.True(t, ok)
	require.Same(t, second, got)

	require.False(t, r.Remove(first), "a replaced session's Remove leaves the newer one")
	_, ok = r.Get(phone, "c2")
	require.True(t, ok)

	require.Equal(t, 2, r.Len())
	require.ElementsMatch(t, []*fake{second, other}, r.Snapshot())

	require.True(t, r.Remove(second))
	require.False(t, r.Remove(second))
	require.Equal(t, 1, r.Len())
}

func TestRegistryConcurrent(t *testing.T) {
	t.Parallel()
	r := New[*fake]()
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for j := range 200 {
				s := &fake{key: Key{User: fmt.Sprintf("@u%d@x", i), Device: fmt.Sprint(j % 5)}, id: fmt.Sprint(j)}
				r.Add(s)
				r.Get(s.key, s.id)
				if j%2 == 0 {
					r.Remove(s)
				}
			}
		})
	}
	wg.Wait()
	require.LessOrEqual(t, r.Len(), 16*5)
}
