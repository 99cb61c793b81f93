package lease

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// UserState is one user's presence.
type UserState struct {
	// User is the entity ID as asked.
	User string
	// Online is true while any device is connected.
	Online bool
	// LastSeenMs is when the user was last online (Unix ms): the time of
	// the query while online, 0 if never seen.
	LastSeenMs int64
	// Devices are the connected devices, ordered by device ID.
	Devices []DeviceState
}

// DeviceState is one connected device.
type DeviceState struct {
	// Device is the device ID.
	Device string
	// Gateway is the gateway holding it.
	Gateway string
	// SinceMs is when it connected (Unix ms).
	SinceMs int64
}

// Query returns the state of each user, in the order asked. A user presence
// has never seen is offline with LastSeenMs 0. Reads are pipelined, one round
// trip for all users; each user's two keys are read without a transaction, so
// a concurrent change may show a fresh device list with a slightly older
// last-seen time, which is harmless.
func (t *Tracker) Query(ctx context.Context, users []string) ([]UserState, error) {
	if len(users) > MaxQueryUsers {
		return nil, fmt.Errorf("query: %w: %d users, at most %d", ErrInvalid, len(users), MaxQueryUsers)
	}
	for _, u := range users {
		if err := validID("user", u); err != nil {
			return nil, fmt.Errorf("query: %w", err)
		}
	}
	if len(users) == 0 {
		return nil, nil
	}
	pipe := t.rdb.Pipeline()
	devs := make([]*redis.MapStringStringCmd, len(users))
	seen := make([]*redis.StringCmd, len(users))
	for i, u := range users {
		devs[i] = pipe.HGetAll(ctx, t.keys.devs(u))
		seen[i] = pipe.Get(ctx, t.keys.seen(u))
	}
	// Exec reports only the first failed command, and a missing last-seen
	// key counts as one, so every command is checked on its own.
	_, _ = pipe.Exec(ctx)
	for i := range users {
		if err := devs[i].Err(); err != nil {
			return nil, t.redisErr(opQuery, "read devices", err)
		}
		if err := seen[i].Err(); err != nil && !errors.Is(err, redis.Nil) {
			return nil, t.redisErr(opQuery, "read last seen", err)
		}
	}
	now := t.nowMs()
	out := make([]UserState, len(users))
	for i, u := range users {
		st := UserState{User: u}
		for device, v := range devs[i].Val() {
			e, err := parseEntry(v)
			if err != nil {
				t.logger.WarnContext(ctx, "skip malformed device entry", "user", u, "device", device, "err", err)
				continue
			}
			st.Devices = append(st.Devices, DeviceState{Device: device, Gateway: e.gateway, SinceMs: e.sinceMs})
		}
		slices.SortFunc(st.Devices, func(a, b DeviceState) int { return strings.Compare(a.Device, b.Device) })
		st.Online = len(st.Devices) > 0
		if st.Online {
			st.LastSeenMs = now
		} else if s := seen[i].Val(); s != "" {
			ms, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				t.logger.WarnContext(ctx, "skip malformed last seen", "user", u, "err", err)
			}
			st.LastSeenMs = ms
		}
		out[i] = st
	}
	return out, nil
}
