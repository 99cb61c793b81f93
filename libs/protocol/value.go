package protocol

import (
	"unicode/utf16"
	"unicode/utf8"
)

// value is the span of one JSON value in the scanned buffer, with what the
// scan learned about it, so that extraction does not scan again.
type value struct {
	start, end int  // b[start:end] is the value; end == 0 means absent
	esc        bool // a string with at least one escape
	ws         bool // a container with insignificant whitespace inside
	isInt      bool // a number without fraction or exponent
}

func (v value) present() bool { return v.end != 0 }

func (v value) isNull(b []byte) bool { return v.present() && b[v.start] == 'n' }

func (v value) isString(b []byte) bool { return v.present() && b[v.start] == '"' }

// str returns a string value unescaped; call it only after isString. ok is
// false for a lone surrogate escape, which has no UTF-8 form.
func (v value) str(b []byte) (s string, ok bool) {
	raw := b[v.start+1 : v.end-1]
	if !v.esc {
		return string(raw), true
	}
	var buf [128]byte
	out, ok := appendUnescaped(buf[:0], raw, true)
	return string(out), ok
}

// int64 returns an integer value; ok is false for other kinds, fractions,
// exponents and overflow.
func (v value) int64(b []byte) (int64, bool) {
	if !v.present() || !v.isInt {
		return 0, false
	}
	return parseInt(b[v.start:v.end])
}

// compact returns a fresh copy of the value with insignificant whitespace
// removed; nothing else changes (no re-escaping, no reordering).
func (v value) compact(b []byte) []byte {
	raw := b[v.start:v.end]
	if !v.ws {
		return append(make([]byte, 0, len(raw)), raw...)
	}
	return appendCompact(make([]byte, 0, len(raw)), raw)
}

// kindName names the JSON kind of the value starting with c, for messages.
func kindName(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// keyBytes returns an object key's content, unescaped into buf when needed.
// Lone surrogates become U+FFFD: such a key matches no known field.
func keyBytes(b []byte, key value, buf []byte) []byte {
	raw := b[key.start+1 : key.end-1]
	if !key.esc {
		return raw
	}
	out, _ := appendUnescaped(buf[:0:len(buf)], raw, false)
	return out
}

// appendUnescaped appends the decoded content of a validated JSON string
// (without its quotes). A lone surrogate escape makes ok false when strict,
// and becomes U+FFFD otherwise.
func appendUnescaped(dst, s []byte, strict bool) (out []byte, ok bool) {
	for i := 0; i < len(s); {
		if s[i] != '\\' {
			j := i + 1
			for j < len(s) && s[j] != '\\' {
				j++
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		c := s[i+1]
		i += 2
		switch c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(s[i:])
			i += 4
			if utf16.IsSurrogate(r) {
				if r < 0xDC00 && i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if r2 := hex4(s[i+2:]); 0xDC00 <= r2 && r2 <= 0xDFFF {
						dst = utf8.AppendRune(dst, utf16.DecodeRune(r, r2))
						i += 6
						continue
					}
				}
				if strict {
					return dst, false
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, c)
		}
	}
	return dst, true
}

// hex4 decodes four validated hex digits.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c <= '9':
			r |= rune(c - '0')
		case c >= 'a':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

// appendCompact appends validated JSON with insignificant whitespace
// removed, like json.Compact but without a second validation pass.
func appendCompact(dst, b []byte) []byte {
	inString := false
	start := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case ' ', '\t', '\n', '\r':
			dst = append(dst, b[start:i]...)
			start = i + 1
		}
	}
	return append(dst, b[start:]...)
}

// parseInt parses a validated JSON integer; ok is false on int64 overflow.
func parseInt(b []byte) (int64, bool) {
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	limit := uint64(1<<63 - 1)
	if neg {
		limit = 1 << 63
	}
	var n uint64
	for _, c := range b {
		d := uint64(c - '0')
		if n > (limit-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	if neg {
		return -int64(n), true // -(1<<63) wraps to itself, which is right
	}
	return int64(n), true
}
