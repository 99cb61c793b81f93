package protocol

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// objectIter walks the members of one JSON object given as bytes, for the
// parsers of "data" contents (handshake, customized content, error reply).
type objectIter struct {
	s   scanner
	buf [64]byte
}

// newObjectIter starts iterating b, which must hold a JSON object. Its
// errors are plain: the parser using it wraps them with its own code.
func newObjectIter(b []byte) (*objectIter, error) {
	if !utf8.Valid(b) {
		return nil, errors.New("data is not valid UTF-8")
	}
	it := &objectIter{s: scanner{b: b, maxDepth: DefaultMaxDepth}}
	it.s.skipWS()
	if it.s.i >= len(b) {
		return nil, errors.New("no data")
	}
	if b[it.s.i] != '{' {
		return nil, fmt.Errorf("data is a JSON %s, not an object", kindName(b[it.s.i]))
	}
	it.s.i++
	return it, nil
}

// next returns the next member: its unescaped key (valid until the next
// call) and its value. After the closing brace it returns done, having
// checked that nothing follows.
func (it *objectIter) next() (key []byte, v value, done bool, err error) {
	k, v, done, serr := it.s.nextMember()
	if serr != nil {
		return nil, v, false, dataError(serr)
	}
	if done {
		if it.s.skipWS(); it.s.i != len(it.s.b) {
			return nil, v, false, dataError(it.s.syntax("data after the object"))
		}
		return nil, v, true, nil
	}
	return keyBytes(it.s.b, k, it.buf[:]), v, false, nil
}

// dataError restates a scanner error about a "data" value, whose code
// (4000, 4011) describes frames, as a plain cause.
func dataError(e *Error) error {
	what := "data is not valid JSON"
	if e.Code == CodeTooDeep {
		what = "data nests too deeply"
	}
	if e.Err == nil {
		return errors.New(what)
	}
	return fmt.Errorf("%s: %w", what, e.Err)
}
