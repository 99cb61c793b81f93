package lease

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// SessionKeyBytes is the size of a session key before encoding.
const SessionKeyBytes = 32

// sessionKeyLen is the length of an encoded session key: base64url
// without padding of SessionKeyBytes.
var sessionKeyLen = base64.RawURLEncoding.EncodedLen(SessionKeyBytes)

// Session is the session key in force for one connection.
type Session struct {
	// Key signs the device's messages (HMAC-SHA256) and is what the DIMP
	// handshake compares; base64url without padding.
	Key string
	// Resumed is true when Key is the key the client presented.
	Resumed bool
}

// OpenSession resumes the device's session when resume is its current key
// and has not expired, and otherwise issues a new key that replaces the
// device's previous one, so any gateway can resume a session another
// issued. Either way the key lives for the session TTL from now, and
// again from each Disconnect.
//
// Redis holds only the SHA-256 of the key: a dump of the store does not
// reveal keys that sign messages, and the comparison in Redis is of
// digests, so its timing says nothing about the key. A malformed resume
// key is not an error: the client just gets a new session.
func (t *Tracker) OpenSession(ctx context.Context, user, device, resume string) (Session, error) {
	for _, f := range []struct{ name, v string }{{"user", user}, {"device", device}} {
		if err := validID(f.name, f.v); err != nil {
			return Session{}, fmt.Errorf("open session: %w", err)
		}
	}
	var raw [SessionKeyBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return Session{}, fmt.Errorf("open session: read random: %w", err)
	}
	fresh := base64.RawURLEncoding.EncodeToString(raw[:])
	presented := ""
	if wellFormedSessionKey(resume) {
		presented = digest(resume)
	}
	resumed, err := sessionScript.Run(ctx, t.rdb, []string{t.keys.session(user, device)},
		presented, digest(fresh), t.sessionTTL.Milliseconds()).Int()
	if err != nil {
		return Session{}, t.redisErr(opSession, "open session", err)
	}
	if resumed == 1 {
		return Session{Key: resume, Resumed: true}, nil
	}
	return Session{Key: fresh}, nil
}

// touchSession starts the session's time to live again when its device
// disconnects, so a session lasts the TTL after the last connection ends.
// Failing only shortens the session; it is logged, not returned.
func (t *Tracker) touchSession(ctx context.Context, user, device string) {
	if err := t.rdb.PExpire(ctx, t.keys.session(user, device), t.sessionTTL).Err(); err != nil {
		t.logger.WarnContext(ctx, "session expiry not extended", "user", user, "device", device,
			"err", t.redisErr(opSession, "extend session", err))
	}
}

// wellFormedSessionKey reports whether k could be a key OpenSession issued.
func wellFormedSessionKey(k string) bool {
	if len(k) != sessionKeyLen {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(k)
	return err == nil
}

func digest(k string) string {
	sum := sha256.Sum256([]byte(k))
	return hex.EncodeToString(sum[:])
}
