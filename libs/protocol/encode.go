package protocol

import (
	"strconv"
	"unicode/utf8"
)

// AppendData appends m as a JSON frame with its fields in a fixed order:
// id, type, time, from, dest, data, sign. id and type are always written;
// the others are left out when zero (time 0, empty strings, nil data).
// m.Data is copied verbatim and must be valid JSON, as Decode produces it;
// callers putting other bytes there (app backend replies) validate first.
func AppendData(dst []byte, m *DataMessage) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, m.ID)
	dst = append(dst, `,"type":`...)
	dst = appendString(dst, m.Type)
	if m.Time != 0 {
		dst = append(dst, `,"time":`...)
		dst = strconv.AppendInt(dst, m.Time, 10)
	}
	if m.From != "" {
		dst = append(dst, `,"from":`...)
		dst = appendString(dst, m.From)
	}
	if m.Dest != "" {
		dst = append(dst, `,"dest":`...)
		dst = appendString(dst, m.Dest)
	}
	if len(m.Data) != 0 {
		dst = append(dst, `,"data":`...)
		dst = append(dst, m.Data...)
	}
	if m.Sign != "" {
		dst = append(dst, `,"sign":`...)
		dst = appendString(dst, m.Sign)
	}
	return append(dst, '}')
}

// AppendTransport appends t as a JSON frame: type, then data and sign when
// not empty, for example {"type":100,"data":"<id>"} or {"type":1002}.
func AppendTransport(dst []byte, t *TransportMessage) []byte {
	dst = append(dst, `{"type":`...)
	dst = strconv.AppendInt(dst, int64(t.Type), 10)
	if t.Data != "" {
		dst = append(dst, `,"data":`...)
		dst = appendString(dst, t.Data)
	}
	if t.Sign != "" {
		dst = append(dst, `,"sign":`...)
		dst = appendString(dst, t.Sign)
	}
	return append(dst, '}')
}

// AppendFrame appends a frame of either kind; nil appends nothing.
func AppendFrame(dst []byte, f Frame) []byte {
	switch m := f.(type) {
	case *DataMessage:
		return AppendData(dst, m)
	case *TransportMessage:
		return AppendTransport(dst, m)
	}
	return dst
}

// MarshalJSON encodes m like AppendData, for code that goes through
// encoding/json (admin API, tests).
func (m *DataMessage) MarshalJSON() ([]byte, error) { return AppendData(nil, m), nil }

// MarshalJSON encodes t like AppendTransport.
func (t *TransportMessage) MarshalJSON() ([]byte, error) { return AppendTransport(nil, t), nil }

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string the way JSON.stringify writes
// it: '"' and '\' escaped, control characters as \b \f \n \r \t or \u00XX,
// everything else as is. Invalid UTF-8 becomes \ufffd so the output is
// always valid JSON in valid UTF-8.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
