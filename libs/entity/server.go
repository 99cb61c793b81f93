package entity

import (
	"fmt"
	"net/netip"
	"strings"
)

// MaxDNSNameLength caps a DNS name in text form (RFC 1035, without the
// trailing dot).
const MaxDNSNameLength = 253

// maxLabelLength caps one DNS label (RFC 1035).
const maxLabelLength = 63

// Server is a parsed server part: a host and an optional port.
type Server struct {
	// Host is an IPv4 address, an IPv6 address (without brackets) or a
	// lowercase DNS name.
	Host string
	// Port is the port, or 0 when the server part has none.
	Port uint16
}

// String returns the server part's text: the host, bracketed if IPv6, and
// ":port" when Port is not 0.
func (s Server) String() string {
	host := s.Host
	if strings.IndexByte(host, ':') >= 0 {
		host = "[" + host + "]"
	}
	if s.Port == 0 {
		return host
	}
	return fmt.Sprintf("%s:%d", host, s.Port)
}

// ParseServer parses a server part: IPv4, [IPv6] or a DNS name, each with an
// optional :port in 1-65535. Only the canonical spelling is accepted
// (lowercase, RFC 5952 IPv6, no zone, no leading zeros, no trailing dot), so
// one server has one text and IDs compare as strings.
func ParseServer(s string) (Server, error) {
	if s == "" {
		return Server{}, ErrMissingServer
	}
	host, port := s, ""
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return Server{}, fmt.Errorf("unclosed IPv6 bracket: %w", ErrInvalidHost)
		}
		host = s[1:end]
		rest := s[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return Server{}, fmt.Errorf("text after IPv6 bracket: %w", ErrInvalidHost)
			}
			port = rest[1:]
			if port == "" {
				return Server{}, fmt.Errorf("empty after ':': %w", ErrInvalidPort)
			}
		}
		if err := checkIPv6(host); err != nil {
			return Server{}, err
		}
	} else {
		if i := strings.IndexByte(s, ':'); i >= 0 {
			host, port = s[:i], s[i+1:]
			if port == "" {
				return Server{}, fmt.Errorf("empty after ':': %w", ErrInvalidPort)
			}
		}
		if err := checkHostName(host); err != nil {
			return Server{}, err
		}
	}
	srv := Server{Host: host}
	if port != "" {
		p, err := parsePort(port)
		if err != nil {
			return Server{}, err
		}
		srv.Port = p
	}
	return srv, nil
}

func parsePort(s string) (uint16, error) {
	if len(s) > 5 || s[0] == '0' {
		return 0, fmt.Errorf("port %q: %w", s, ErrInvalidPort)
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("port %q: %w", s, ErrInvalidPort)
		}
		n = n*10 + int(c-'0')
	}
	if n > 65535 {
		return 0, fmt.Errorf("port %d out of range: %w", n, ErrInvalidPort)
	}
	return uint16(n), nil
}

func checkIPv6(s string) error {
	if s == "" {
		return fmt.Errorf("empty IPv6 address: %w", ErrInvalidHost)
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() || a.Zone() != "" {
		return fmt.Errorf("bracketed host is not an IPv6 address: %w", ErrInvalidHost)
	}
	if a.String() != s {
		return fmt.Errorf("IPv6 address not in canonical form %s: %w", a, ErrInvalidHost)
	}
	return nil
}

// checkHostName accepts a dotted-quad IPv4 address or a DNS name. A name
// whose last label is all digits must be an IPv4 address (as in WHATWG URL
// parsing), so "256.1.1.1" and "1.2.3" are errors, not DNS names.
func checkHostName(s string) error {
	if s == "" {
		return fmt.Errorf("empty host: %w", ErrInvalidHost)
	}
	last := s[strings.LastIndexByte(s, '.')+1:]
	if last != "" && allDigits(last) {
		return checkIPv4(s)
	}
	return checkDNSName(s)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func checkIPv4(s string) error {
	a, err := netip.ParseAddr(s) // rejects leading zeros and octets > 255
	if err != nil || !a.Is4() {
		return fmt.Errorf("not an IPv4 address: %w", ErrInvalidHost)
	}
	return nil
}

// checkDNSName enforces RFC 1123 host names in lowercase: labels of 1-63
// bytes of a-z 0-9 and '-', not starting or ending with '-', at most 253
// bytes, no trailing dot.
func checkDNSName(s string) error {
	if s == "" {
		return fmt.Errorf("empty DNS name: %w", ErrInvalidHost)
	}
	if len(s) > MaxDNSNameLength {
		return fmt.Errorf("DNS name of %d bytes: %w", len(s), ErrInvalidHost)
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			c := s[i]
			if !hostByte(c) {
				return fmt.Errorf("byte %q at %d in DNS name: %w", c, i, ErrInvalidHost)
			}
			continue
		}
		label := s[start:i]
		switch {
		case label == "":
			return fmt.Errorf("empty DNS label at %d: %w", start, ErrInvalidHost)
		case len(label) > maxLabelLength:
			return fmt.Errorf("DNS label of %d bytes at %d: %w", len(label), start, ErrInvalidHost)
		case label[0] == '-' || label[len(label)-1] == '-':
			return fmt.Errorf("DNS label at %d starts or ends with '-': %w", start, ErrInvalidHost)
		}
		start = i + 1
	}
	return nil
}

func hostByte(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-'
}
