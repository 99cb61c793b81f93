// Package origin decides which browser origins may open a WebSocket to the
// gateway. Browsers send the page's origin with every WebSocket handshake
// and let any page connect anywhere, so a gateway that serves one web app
// lists that app's origins and refuses pages elsewhere from using its
// users' tokens. Clients that are not browsers send no Origin and are not
// affected.
package origin

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrInvalid is returned by Parse for a pattern that is not an origin.
var ErrInvalid = errors.New("invalid origin pattern")

// Policy is a list of allowed origins. A nil Policy allows every origin.
type Policy struct {
	exact    map[string]bool
	suffixes []suffix // from "scheme://*.domain" patterns
}

// suffix matches an origin whose scheme is scheme and whose host ends in
// "."+domain (any depth of subdomain, not the domain itself).
type suffix struct{ scheme, domain string }

// Parse reads a comma-separated list of origins, each "scheme://host" or
// "scheme://host:port", or "scheme://*.domain" for every subdomain of
// domain on any port. An empty list, or one that holds "*", allows every origin and
// returns nil.
func Parse(list string) (*Policy, error) {
	p := &Policy{exact: make(map[string]bool)}
	var problems []error
	for raw := range strings.SplitSeq(list, ",") {
		pat := asciiLower(strings.TrimSpace(raw))
		switch pat {
		case "":
			continue
		case "*":
			return nil, nil
		}
		scheme, host, ok := strings.Cut(pat, "://")
		if !ok || scheme == "" || host == "" {
			problems = append(problems, fmt.Errorf("%w %q: want scheme://host[:port] or scheme://*.domain", ErrInvalid, raw))
			continue
		}
		if domain, ok := strings.CutPrefix(host, "*."); ok {
			if !validHost(domain) {
				problems = append(problems, fmt.Errorf("%w %q: bad domain", ErrInvalid, raw))
				continue
			}
			p.suffixes = append(p.suffixes, suffix{scheme: scheme, domain: domain})
			continue
		}
		canon, ok := canonical(pat)
		if !ok {
			problems = append(problems, fmt.Errorf("%w %q: want scheme://host[:port] without path", ErrInvalid, raw))
			continue
		}
		p.exact[canon] = true
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	if len(p.exact) == 0 && len(p.suffixes) == 0 {
		return nil, nil
	}
	return p, nil
}

// Allow reports whether a handshake with this Origin header may connect.
// A request without Origin is not from a browser and is allowed; "null"
// (sandboxed frames, files) is refused unless every origin is.
func (p *Policy) Allow(header string) bool {
	if p == nil || header == "" {
		return true
	}
	o, ok := canonical(asciiLower(header))
	if !ok {
		return false
	}
	if p.exact[o] {
		return true
	}
	scheme, host, _ := strings.Cut(o, "://")
	if h, _, found := strings.Cut(host, ":"); found {
		host = h
	}
	for _, s := range p.suffixes {
		if scheme == s.scheme && strings.HasSuffix(host, "."+s.domain) {
			return true
		}
	}
	return false
}

// canonical returns o as "scheme://host[:port]" when it is an origin: a
// scheme and a host, no user, path, query or fragment.
func canonical(o string) (string, bool) {
	u, err := url.Parse(o)
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", false
	}
	if !validHost(u.Hostname()) {
		return "", false
	}
	return u.Scheme + "://" + u.Host, true
}

func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.', r == ':', r == '[', r == ']':
		default:
			return false
		}
	}
	return true
}

// asciiLower lowers ASCII letters only. Origins are ASCII (browsers send
// international names in punycode), and a Unicode mapping such as the
// Kelvin sign to "k" would let a header that is no origin match one.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c - 'A' + 'a'
		}
	}
	return string(b)
}
