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

	add := func(s *fake) (*fake, bool) {
		t.Helper()
		replaced, ok, err := r.Add(s, 0)
		require.NoError(t, err)
		return replaced, ok
	}
	_, ok := add(first)
	require.False(t, ok)
	_, ok = add(other)
	require.False(t, ok)

	got, ok := r.Get(phone, "c1")
	require.True(t, ok)
	require.Same(t, first, got)

	replaced, ok := add(second)
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
	require.ElementsMatch(t, []*fake{second, other}, r.User("@alice@localhost"))
	require.Empty(t, r.User("@bob@localhost"))

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
				_, _, err := r.Add(s, 3)
				if err != nil {
					require.ErrorIs(t, err, ErrTooManyDevices)
					continue
				}
				r.Get(s.key, s.id)
				if j%2 == 0 {
					r.Remove(s)
				}
			}
		})
	}
	wg.Wait()
	require.LessOrEqual(t, r.Len(), 16*3)
	for i := range 16 {
		require.LessOrEqual(t, len(r.User(fmt.Sprintf("@u%d@x", i))), 3)
	}
}

func TestDevicesPerUserLimit(t *testing.T) {
	t.Parallel()
	r := New[*fake]()
	dev := func(user, device, id string) *fake {
		return &fake{key: Key{User: user, Device: device}, id: id}
	}
	phone, laptop := dev("@alice@x", "phone", "c1"), dev("@alice@x", "laptop", "c2")
	for _, s := range []*fake{phone, laptop} {
		_, _, err := r.Add(s, 2)
		require.NoError(t, err)
	}

	tablet := dev("@alice@x", "tablet", "c3")
	require.False(t, r.Admits(tablet.key, 2))
	_, _, err := r.Add(tablet, 2)
	require.ErrorIs(t, err, ErrTooManyDevices)
	require.Len(t, r.User("@alice@x"), 2, "a refused device is not registered")

	// A registered device may always reconnect: its new connection
	// replaces the old one and counts once.
	phoneAgain := dev("@alice@x", "phone", "c4")
	require.True(t, r.Admits(phoneAgain.key, 2))
	replaced, ok, err := r.Add(phoneAgain, 2)
	require.NoError(t, err)
	require.True(t, ok)
	require.Same(t, phone, replaced)

	// Other users have their own count; no limit means none.
	_, _, err = r.Add(dev("@bob@x", "phone", "c5"), 2)
	require.NoError(t, err)
	_, _, err = r.Add(tablet, 0)
	require.NoError(t, err)

	// A removed device frees its place.
	require.True(t, r.Remove(tablet))
	require.True(t, r.Remove(laptop))
	require.True(t, r.Admits(tablet.key, 2))
	_, _, err = r.Add(tablet, 2)
	require.NoError(t, err)
	require.False(t, r.Remove(phone), "the replaced connection's late Remove changes nothing")
	require.Len(t, r.User("@alice@x"), 2)
}
