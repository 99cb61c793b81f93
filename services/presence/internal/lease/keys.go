package lease

import (
	"fmt"
	"strconv"
	"strings"
)

// sep separates the fields of stored values and set members. IDs never
// contain it (validate rejects them), so splitting is unambiguous.
const sep = "\x1f"

// keys builds every Redis key from one prefix; see the package doc.
type keys struct{ p string }

func newKeys(prefix string) keys { return keys{p: prefix + ":p:"} }

func (k keys) devs(user string) string { return k.p + "{" + user + "}:devs" }
func (k keys) seen(user string) string { return k.p + "{" + user + "}:seen" }
func (k keys) session(user, device string) string {
	return k.p + "{" + user + "}:sess:" + device
}
func (k keys) conns(gateway, epoch string) string {
	return k.p + "{gw:" + gateway + "}:conns:" + epoch
}
func (k keys) leases() string { return k.p + "{gateways}:leases" }
func (k keys) epochs() string { return k.p + "{gateways}:epochs" }
func (k keys) seq() string    { return k.p + "{gateways}:seq" }
func (k keys) sweeps() string { return k.p + "{gateways}:sweeps" }

// member is a connection's entry in its gateway's connection set.
func (c Connection) member() string { return c.User + sep + c.Device + sep + c.ID }

// parseMember reads a connection set entry back; gateway is the set's.
func parseMember(gateway, m string) (Connection, error) {
	f := strings.Split(m, sep)
	if len(f) != 3 {
		return Connection{}, fmt.Errorf("connection set entry %q: want 3 fields, got %d", m, len(f))
	}
	return Connection{User: f[0], Device: f[1], Gateway: gateway, ID: f[2]}, nil
}

// entry is one device's value in its user's devs hash.
type entry struct {
	gateway, conn, epoch string
	sinceMs              int64
}

func parseEntry(v string) (entry, error) {
	f := strings.Split(v, sep)
	if len(f) != 4 {
		return entry{}, fmt.Errorf("device entry %q: want 4 fields, got %d", v, len(f))
	}
	since, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil {
		return entry{}, fmt.Errorf("device entry %q: since: %w", v, err)
	}
	return entry{gateway: f[0], conn: f[1], epoch: f[2], sinceMs: since}, nil
}
