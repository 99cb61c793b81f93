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
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
)

// shards spreads the registry over this many locks so connects,
// disconnects and deliveries on many cores rarely contend.
const shards = 64

// ErrTooManyDevices is returned by Add when the user already has the
// allowed number of devices connected here.
var ErrTooManyDevices = errors.New("too many connections for this user")

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

// shard holds every device of the users that hash to it, so what concerns
// one user (its count, a kick) takes one lock.
type shard[S Session] struct {
	mu    sync.RWMutex
	m     map[Key]S
	users map[string]int // devices registered per user
}

// New returns an empty registry.
func New[S Session]() *Registry[S] {
	r := &Registry[S]{seed: maphash.MakeSeed()}
	for i := range r.shards {
		r.shards[i].m = make(map[Key]S)
		r.shards[i].users = make(map[string]int)
	}
	return r
}

func (r *Registry[S]) shard(user string) *shard[S] {
	return &r.shards[maphash.String(r.seed, user)%shards]
}

// Add registers s and returns the session it replaced, if any; the caller
// closes that one. A new device of a user who already has maxPerUser
// devices registered is refused with ErrTooManyDevices (maxPerUser 0 sets
// no limit); a newer connection of a registered device is always let in,
// so a client reconnecting over a half-open socket is never locked out.
func (r *Registry[S]) Add(s S, maxPerUser int) (replaced S, ok bool, err error) {
	k := s.Key()
	sh := r.shard(k.User)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	replaced, ok = sh.m[k]
	if !ok {
		if maxPerUser > 0 && sh.users[k.User] >= maxPerUser {
			return replaced, false, fmt.Errorf("user %s: %d devices: %w", k.User, sh.users[k.User], ErrTooManyDevices)
		}
		sh.users[k.User]++
	}
	sh.m[k] = s
	return replaced, ok, nil
}

// Admits reports whether Add would let a connection of k in now under
// maxPerUser; the gateway asks before the upgrade so it can refuse with a
// plain HTTP status. Add decides for good.
func (r *Registry[S]) Admits(k Key, maxPerUser int) bool {
	if maxPerUser <= 0 {
		return true
	}
	sh := r.shard(k.User)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	_, registered := sh.m[k]
	return registered || sh.users[k.User] < maxPerUser
}

// Remove unregisters s if it is still the device's session, and reports
// whether it was: a replaced session's late Remove leaves its successor in
// place.
func (r *Registry[S]) Remove(s S) bool {
	k := s.Key()
	sh := r.shard(k.User)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	cur, ok := sh.m[k]
	if !ok || cur.ConnID() != s.ConnID() {
		return false
	}
	delete(sh.m, k)
	if sh.users[k.User]--; sh.users[k.User] <= 0 {
		delete(sh.users, k.User)
	}
	return true
}

// Get returns the device's session if its connection ID is connID. A
// delivery addressed to another connection of the device is stale: the
// device reconnected and delivery will send it again for the new one.
func (r *Registry[S]) Get(k Key, connID string) (S, bool) {
	sh := r.shard(k.User)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	s, ok := sh.m[k]
	if !ok || s.ConnID() != connID {
		var zero S
		return zero, false
	}
	return s, true
}

// User returns the sessions of user's devices.
func (r *Registry[S]) User(user string) []S {
	sh := r.shard(user)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	var out []S
	if sh.users[user] == 0 {
		return nil
	}
	for k, s := range sh.m {
		if k.User == user {
			out = append(out, s)
		}
	}
	return out
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
