package protocol

import (
	"bytes"
	"encoding/binary"
)

// scanner validates JSON text in a buffer that is already known to be valid
// UTF-8. It never recurses: nesting is tracked with a depth counter and a
// fixed bit stack, so hostile input cannot grow the goroutine stack or the
// heap. Only ASCII is structural in JSON, so the scanner works on bytes.
type scanner struct {
	b        []byte
	i        int
	maxDepth int
	members  int  // members read by nextMember in the current object
	ws       bool // insignificant whitespace skipped since last reset
}

func (s *scanner) syntax(what string) *Error {
	if s.i >= len(s.b) {
		return Errorf(CodeInvalidJSON, "unexpected end of input")
	}
	return Errorf(CodeInvalidJSON, "offset %d: %s", s.i, what)
}

func (s *scanner) skipWS() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
			s.ws = true
		default:
			return
		}
	}
}

// scanString scans a string starting at its opening quote and reports
// whether it contains escapes.
func (s *scanner) scanString() (esc bool, err *Error) {
	b := s.b
	i := s.i + 1
	for {
		i = skipPlain(b, i)
		if i >= len(b) {
			s.i = len(b)
			return false, s.syntax("")
		}
		switch b[i] {
		case '"':
			s.i = i + 1
			return esc, nil
		case '\\':
			esc = true
			if i+1 >= len(b) {
				s.i = len(b)
				return false, s.syntax("")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					s.i = i
					return false, s.syntax(`invalid \u escape`)
				}
				i += 6
			default:
				s.i = i
				return false, s.syntax("invalid escape")
			}
		default: // c < 0x20
			s.i = i
			return false, s.syntax("control character in string")
		}
	}
}

// skipPlain returns the index of the first byte at or after i that is '"',
// '\\' or a control character, or len(b). It tests eight bytes at a time
// (bit tricks from "Bit Twiddling Hacks": haszero and hasless), because
// string contents are most of every frame.
func skipPlain(b []byte, i int) int {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
	)
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		q := x ^ (ones * '"')
		bs := x ^ (ones * '\\')
		if ((x-ones*0x20)&^x|(q-ones)&^q|(bs-ones)&^bs)&high != 0 {
			break
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c < 0x20 || c == '"' || c == '\\' {
			return i
		}
	}
	return i
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// scanNumber scans a number per RFC 8259 and reports whether it is an
// integer (no fraction, no exponent).
func (s *scanner) scanNumber() (isInt bool, err *Error) {
	b, i := s.b, s.i
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		s.i = i
		return false, s.syntax("invalid number")
	}
	isInt = true
	if i < len(b) && b[i] == '.' {
		isInt = false
		i++
		if i >= len(b) || !isDigit(b[i]) {
			s.i = i
			return false, s.syntax("invalid number fraction")
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		isInt = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			s.i = i
			return false, s.syntax("invalid number exponent")
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	s.i = i
	return isInt, nil
}

func (s *scanner) scanLiteral(lit string) *Error {
	if !bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		return s.syntax("invalid literal")
	}
	s.i += len(lit)
	return nil
}

// scanKey scans an object key and the colon after it.
func (s *scanner) scanKey() (esc bool, err *Error) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return false, s.syntax("expected string key")
	}
	if esc, err = s.scanString(); err != nil {
		return false, err
	}
	s.skipWS()
	if s.i >= len(s.b) || s.b[s.i] != ':' {
		return false, s.syntax("expected ':'")
	}
	s.i++
	return esc, nil
}

// scanValue scans one complete value of any kind at s.i (after optional
// whitespace). depth is the number of containers already open around it.
func (s *scanner) scanValue(depth int) *Error {
	base := depth
	// Bit d-1 set: the container at depth d is an object.
	var stack [MaxDepthLimit / 64]uint64
	for {
		// A value is expected here.
		s.skipWS()
		if s.i >= len(s.b) {
			return s.syntax("")
		}
		complete := true
		switch c := s.b[s.i]; c {
		case '{', '[':
			depth++
			if depth > s.maxDepth {
				return Errorf(CodeTooDeep, "offset %d: more than %d levels", s.i, s.maxDepth)
			}
			obj := c == '{'
			if obj {
				stack[(depth-1)/64] |= 1 << ((depth - 1) % 64)
			} else {
				stack[(depth-1)/64] &^= 1 << ((depth - 1) % 64)
			}
			s.i++
			s.skipWS()
			switch {
			case s.i >= len(s.b):
				return s.syntax("")
			case obj && s.b[s.i] == '}', !obj && s.b[s.i] == ']':
				s.i++
				depth--
			default:
				complete = false
				if obj {
					if _, err := s.scanKey(); err != nil {
						return err
					}
				}
			}
		case '"':
			if _, err := s.scanString(); err != nil {
				return err
			}
		case 't':
			if err := s.scanLiteral("true"); err != nil {
				return err
			}
		case 'f':
			if err := s.scanLiteral("false"); err != nil {
				return err
			}
		case 'n':
			if err := s.scanLiteral("null"); err != nil {
				return err
			}
		default:
			if c != '-' && !isDigit(c) {
				return s.syntax("unexpected character")
			}
			if _, err := s.scanNumber(); err != nil {
				return err
			}
		}
		if !complete {
			continue
		}
		// A value is complete: close containers until another value is due.
	closing:
		for {
			if depth == base {
				return nil
			}
			s.skipWS()
			if s.i >= len(s.b) {
				return s.syntax("")
			}
			obj := stack[(depth-1)/64]&(1<<((depth-1)%64)) != 0
			switch c := s.b[s.i]; {
			case c == ',':
				s.i++
				if obj {
					s.skipWS()
					if _, err := s.scanKey(); err != nil {
						return err
					}
				}
				break closing
			case obj && c == '}', !obj && c == ']':
				s.i++
				depth--
			default:
				return s.syntax("expected ',' or end of container")
			}
		}
	}
}

// nextMember reads the next "key": value member of the object whose '{' has
// been consumed (at depth 1). done reports the closing brace.
func (s *scanner) nextMember() (key, val value, done bool, err *Error) {
	s.skipWS()
	if s.i >= len(s.b) {
		return key, val, false, s.syntax("")
	}
	if s.b[s.i] == '}' {
		s.i++
		return key, val, true, nil
	}
	if s.members > 0 {
		if s.b[s.i] != ',' {
			return key, val, false, s.syntax("expected ',' or '}'")
		}
		s.i++
		s.skipWS()
	}
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return key, val, false, s.syntax("expected string key")
	}
	key.start = s.i
	if key.esc, err = s.scanString(); err != nil {
		return key, val, false, err
	}
	key.end = s.i
	s.skipWS()
	if s.i >= len(s.b) || s.b[s.i] != ':' {
		return key, val, false, s.syntax("expected ':'")
	}
	s.i++
	s.skipWS()
	if s.i >= len(s.b) {
		return key, val, false, s.syntax("")
	}
	val.start = s.i
	s.ws = false
	switch c := s.b[s.i]; {
	case c == '"':
		val.esc, err = s.scanString()
	case c == '-' || isDigit(c):
		val.isInt, err = s.scanNumber()
	default:
		err = s.scanValue(1)
	}
	if err != nil {
		return key, val, false, err
	}
	val.end = s.i
	val.ws = s.ws
	s.members++
	return key, val, false, nil
}
