package protocol

import (
	"encoding/json"
	"strconv"
)

// MaxPresenceUsers is the most users one presence.subscribe or
// presence.unsubscribe may name.
const MaxPresenceUsers = 1000

// ParsePresenceUsers reads the users of a presence.subscribe or
// presence.unsubscribe: data must be an object whose "users" is a
// non-empty array of at most MaxPresenceUsers strings. The strings are
// returned as sent; resolving them to entity IDs is the caller's. Errors
// are *Error with CodeInvalidPresence.
func ParsePresenceUsers(data []byte) ([]string, error) {
	var req struct {
		Users json.RawMessage `json:"users"`
	}
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, Errorf(CodeInvalidPresence, "data must be an object with users")
	}
	if len(req.Users) == 0 || req.Users[0] != '[' {
		return nil, Errorf(CodeInvalidPresence, "users must be an array of user IDs")
	}
	var users []string
	if err := json.Unmarshal(req.Users, &users); err != nil {
		return nil, Errorf(CodeInvalidPresence, "users must be an array of strings")
	}
	switch {
	case len(users) == 0:
		return nil, Errorf(CodeInvalidPresence, "users is empty")
	case len(users) > MaxPresenceUsers:
		return nil, Errorf(CodeInvalidPresence, "%d users: at most %d per request", len(users), MaxPresenceUsers)
	}
	return users, nil
}

// AppendPresence appends the presence event a subscriber receives:
// {"type":"presence","data":{"user":…,"status":"online|offline","lastSeen":ms}}.
func AppendPresence(dst []byte, user string, online bool, lastSeenMs int64) []byte {
	dst = append(dst, `{"type":"presence","data":{"user":`...)
	dst = appendString(dst, user)
	if online {
		dst = append(dst, `,"status":"online","lastSeen":`...)
	} else {
		dst = append(dst, `,"status":"offline","lastSeen":`...)
	}
	dst = strconv.AppendInt(dst, lastSeenMs, 10)
	return append(dst, "}}"...)
}
