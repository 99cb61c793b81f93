// Package session is the registry of the connections this gateway holds,
// keyed by (user, device). Deliveries find their connection here, the
// heartbeat loop re-announces them, and a drain closes them all.
//
// One device has at most one connection per gateway: a newer connection of
// the same device replaces the older one, which its owner then closes. Two
// connections of one device on two different gateways are told apart by
// their connection IDs in delivery and presence, which always act on the
// newest one.
package session

import (
	"hash/maphash"
	"sync"
)

// shards spreads the registry over this many locks so connects,
// disconnects and deliveries on many cores rarely contend.
const shards = 64

// Key names one device of one user.
type Key struct {
	// User is the user's entity ID, "@alice@localhost".
	User string
	// Device is the device ID the client connected with.
	Device string
}

// Session is one registered connection.
type Session interface {
	// Key is the device the connection belongs to.
	Key() Key
	// ConnID is unique per connection; delivery and presence use it so a
	// late message about an old connection never touches a newer one.
	ConnID() string
}

// Registry maps devices to their connection. The zero value is not usable;
// use New.
type Registry[S Session] struct {
	seed   maphash.Seed
	shards [shards]shard[S]
}

type shard[S Session] struct {
	mu sync.RWMutex
	m  map[Key]S
}

// New returns an empty registry.
func New[S Session]() *Registry[S] {
	r := &Registry[S]{seed: maphash.MakeSeed()}
	for i := range r.shards {
		r.shards[i].m = make(map[Key]S)
	}
	return r
}

func (r *Registry[S]) shard(k Key) *shard[S] {
	var h maphash.Hash
	h.SetSeed(r.seed)
	h.WriteString(k.User)
	h.WriteByte(0)
	h.WriteString(k.Device)
	return &r.shards[h.Sum64()%shards]
}

// Add registers s and returns the session it replaced, if any; the caller
// closes that one.
func (r *Registry[S]) Add(s S) (replaced S, ok bool) {
	sh := r.shard(s.Key())
	sh.mu.Lock()
	defer sh.mu.Unlock()
	replaced, ok = sh.m[s.Key()]
	sh.m[s.Key()] = s
	return replaced, ok
}

// Remove unregisters s if it is still the device's session, and reports
// whether it was: a replaced session's late Remove leaves its successor in
// place.
func (r *Registry[S]) Remove(s S) bool {
	sh := r.shard(s.Key())
	sh.mu.Lock()
	defer sh.mu.Unlock()
	cur, ok := sh.m[s.Key()]
	if !ok || cur.ConnID() != s.ConnID() {
		return false
	}
	delete(sh.m, s.Key())
	return true
}

// Get returns the device's session if its connection ID is connID. A
// delivery addressed to another connection of the device is stale: the
// device reconnected and delivery will send it again for the new one.
func (r *Registry[S]) Get(k Key, connID string) (S, bool) {
	sh := r.shard(k)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	s, ok := sh.m[k]
	if !ok || s.ConnID() != connID {
		var zero S
		return zero, false
	}
	return s, true
}

// Len is the number of registered sessions.
func (r *Registry[S]) Len() int {
	n := 0
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}

// Snapshot returns every registered session at one moment per shard.
// Sessions added or removed meanwhile may or may not be in it.
func (r *Registry[S]) Snapshot() []S {
	out := make([]S, 0, r.Len())
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.RLock()
		for _, s := range sh.m {
			out = append(out, s)
		}
		sh.mu.RUnlock()
	}
	return out
}
