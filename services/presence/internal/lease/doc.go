// Package lease is the presence service's state in Redis: which device of
// which user is connected through which gateway, the gateways' leases, and
// the sweep that declares a gateway dead when its lease runs out. It
// publishes the resulting events on NATS.
//
// # Keys
//
// Every key starts with "<prefix>:p:" (prefix from BACHATA_REDIS_PREFIX,
// default "bachata"). "␟" below is the ASCII unit separator 0x1f, which no
// ID may contain.
//
//	key                              type    content
//	<p>:p:{<user>}:devs              HASH    device → gateway␟connection␟epoch␟since_ms
//	<p>:p:{<user>}:seen              STRING  last seen, Unix ms (never expires)
//	<p>:p:{<user>}:sess:<device>     STRING  SHA-256 (hex) of the device's session key, expires
//	<p>:p:{gw:<gateway>}:conns:<e>   SET     user␟device␟connection recorded under lease epoch e
//	<p>:p:{gateways}:leases          ZSET    gateway → lease expiry, Unix ms
//	<p>:p:{gateways}:epochs          HASH    gateway → epoch of its current lease
//	<p>:p:{gateways}:seq             STRING  last epoch handed out
//	<p>:p:{gateways}:sweeps          ZSET    gateway␟epoch → claim deadline, Unix ms
//
// The per-user keys share the hash tag {<user>}, so connect.lua and
// disconnect.lua each touch one Redis Cluster slot. The tag ends at the
// first "}" even if a user ID holds one, but it does so identically in both
// keys of that user, so they still share a slot. The gateway keys share
// {gateways}, so heartbeat.lua and claim.lua are one slot too. A gateway's
// connection set is its own slot and is only touched by single commands.
//
// # Epochs
//
// Each lease a gateway starts (a Heartbeat when it has none) gets a new
// epoch from <p>:p:{gateways}:seq. Connections are recorded under the epoch
// of the lease they were made in, and a sweep removes only entries of the
// epoch it swept. That is what makes a gateway that paused past its lease
// safe: while its old epoch is being swept it may already heartbeat again
// and reconnect the same connection IDs under a new epoch, and the sweep
// leaves those alone.
//
// # Gateway protocol
//
// A gateway calls Heartbeat before its first Connect and then well within
// its lease. Heartbeat reports known=false when the gateway had no lease
// (first start, or its lease expired and was swept): its devices are
// offline in presence, and it must Connect every connection it holds again.
// Connect fails with ErrUnknownGateway when the gateway has no lease, for
// the same reason: Connect never creates a lease itself, because then the
// next Heartbeat would answer known=true and the devices removed by the
// sweep would never be connected again.
//
// # Sweeping
//
// Every presence instance runs the sweeper. claim.lua moves expired leases
// to the sweeps set atomically, so one instance sweeps each gateway. A claim
// that is neither finished nor released by its deadline (the instance died)
// is claimed again by another instance: then GatewayDown for that gateway is
// published more than once, which consumers tolerate because they act on a
// connection only while it is still the device's current one. Until a sweep
// claims it, an expired lease is still the gateway's: a late Heartbeat
// renews it with known=true, since nothing was removed.
//
// # Events
//
// PresenceChanged goes to natsx.Subjects.PresenceChanged(natsx.UserToken(user))
// when a user's first device connects (online) or last device goes away
// (offline); LastSeenMs is the time of the change. GatewayDown goes to
// natsx.Subjects.GatewayDown() after a sweep, split into several messages
// when its connections would not fit in one NATS payload. It lists every
// connection recorded under the swept lease except those the gateway has
// already connected again under a newer lease (those are live).
//
// Events are published after Redis has the new state, and a failed publish
// does not fail the call: a subscriber that missed one (NATS down) catches
// up with Query. Two changes of one user handled by different instances may
// arrive out of order; LastSeenMs orders them.
//
// # Clocks
//
// Lease expiries, connection times and last-seen times come from the clock
// of the presence instance handling the call, so instances are expected to
// be NTP-synchronised: skew between them shifts crash detection by as
// much. Last seen never moves backwards, whatever the skew.
package lease
