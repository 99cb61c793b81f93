// Package loopback keeps the load tool on this machine: every address it
// dials, binds or scrapes must be in 127.0.0.0/8. A load tool pointed at
// someone else's server by a typo is a denial-of-service tool; this one
// refuses.
package loopback

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// MaxSources bounds a source range: more addresses than this add nothing
// (each gives about 28,000 ephemeral ports) and a typo like 127.0.0.1-127.255.255.255
// would otherwise allocate millions.
const MaxSources = 1024

// ErrNotLoopback is returned for any address outside 127.0.0.0/8.
var ErrNotLoopback = errors.New("not a loopback address in 127.0.0.0/8: the load tool only targets this machine")

var loopback = netip.MustParsePrefix("127.0.0.0/8")

// IsLoopback reports whether a is an IPv4 address in 127.0.0.0/8.
func IsLoopback(a netip.Addr) bool {
	return a.Is4() && loopback.Contains(a)
}

// CheckURL validates a URL the tool will connect to: its scheme is one of
// schemes, it has an explicit port, and its host is an IPv4 literal in
// 127.0.0.0/8 or "localhost" (taken as 127.0.0.1, never resolved, so a
// hosts file cannot point it elsewhere). It returns the URL with the host
// as an IP literal.
func CheckURL(raw string, schemes ...string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", raw, err)
	}
	ok := false
	for _, s := range schemes {
		ok = ok || u.Scheme == s
	}
	if !ok {
		return nil, fmt.Errorf("%q: want scheme %s", raw, strings.Join(schemes, " or "))
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		return nil, fmt.Errorf("%q: want an explicit port", raw)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !IsLoopback(a) {
		return nil, fmt.Errorf("%q: host %q: %w", raw, u.Hostname(), ErrNotLoopback)
	}
	out := *u
	out.Host = net.JoinHostPort(a.String(), port)
	return &out, nil
}

// CheckURLs is CheckURL for a comma-separated list (empty entries
// skipped), reporting every bad entry at once.
func CheckURLs(list string, schemes ...string) ([]*url.URL, error) {
	var (
		out  []*url.URL
		errs []error
	)
	for raw := range strings.SplitSeq(list, ",") {
		if raw = strings.TrimSpace(raw); raw == "" {
			continue
		}
		u, err := CheckURL(raw, schemes...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, u)
	}
	return out, errors.Join(errs...)
}

// ParseSources parses the local addresses to bind connections to: a
// comma-separated list of addresses and inclusive ranges like
// "127.0.0.2-127.0.0.20". Every address must be in 127.0.0.0/8, and the
// total at most MaxSources.
func ParseSources(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := parseLoopback(lo)
		if err != nil {
			return nil, err
		}
		last := first
		if isRange {
			if last, err = parseLoopback(hi); err != nil {
				return nil, err
			}
			if last.Less(first) {
				return nil, fmt.Errorf("source range %q: end before start", part)
			}
		}
		for a := first; ; a = a.Next() {
			if len(out) == MaxSources {
				return nil, fmt.Errorf("sources %q: more than %d addresses", s, MaxSources)
			}
			out = append(out, a)
			if a == last {
				break
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("sources: want at least one address")
	}
	return out, nil
}

func parseLoopback(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("source %q: %w", s, err)
	}
	if !IsLoopback(a) {
		return netip.Addr{}, fmt.Errorf("source %q: %w", s, ErrNotLoopback)
	}
	return a, nil
}
