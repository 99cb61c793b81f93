package protocol

import (
	"unicode/utf8"

	"github.com/bachata-chat/bachata/libs/entity"
)

// Decoder decodes frames with configurable limits. The zero Decoder uses
// the defaults; a Decoder is a plain value, safe for concurrent use.
type Decoder struct {
	// MaxFrameSize is the largest frame in bytes; 0 means
	// DefaultMaxFrameSize.
	MaxFrameSize int
	// MaxDepth is how deeply objects and arrays may nest, the frame's object
	// counting as 1; 0 means DefaultMaxDepth, and values above
	// MaxDepthLimit mean MaxDepthLimit.
	MaxDepth int
	// AllowMissingID accepts data messages without an id, for reading what
	// the server sends (clients, tests, the load tool): an error reply to a
	// frame whose id could not be read, and presence events, have none. The
	// server never sets it: a client's data message always needs an id.
	AllowMissingID bool
}

// Decode decodes one frame with the default limits; see Decoder.Decode.
func Decode(frame []byte) (Frame, error) { return Decoder{}.Decode(frame) }

// Indexes of the known top-level fields.
const (
	fieldID = iota
	fieldType
	fieldTime
	fieldFrom
	fieldDest
	fieldData
	fieldSign
	numFields
)

func fieldIndex(key []byte) int {
	switch string(key) { // no allocation: the compiler compares in place
	case "id":
		return fieldID
	case "type":
		return fieldType
	case "time":
		return fieldTime
	case "from":
		return fieldFrom
	case "dest":
		return fieldDest
	case "data":
		return fieldData
	case "sign":
		return fieldSign
	}
	return -1
}

func fieldName(i int) string {
	switch i {
	case fieldID:
		return "id"
	case fieldType:
		return "type"
	case fieldTime:
		return "time"
	case fieldFrom:
		return "from"
	case fieldDest:
		return "dest"
	case fieldData:
		return "data"
	}
	return "sign"
}

// Decode decodes one frame into a *DataMessage or a *TransportMessage. Every
// rejection is an *Error whose Code says why; its ID and Type are filled in
// as far as they could be read, for the ":error" reply. Checks, first
// failure wins: size (4012), UTF-8 (4010), JSON syntax and nesting (4000,
// 4011), object (4001), duplicate keys (4008), type (4002, 4003), id (4004,
// 4005), field types (4007), then dest (4006).
//
// Keys match case-sensitively; unknown top-level fields are dropped. The
// returned message does not alias frame, which the caller may reuse.
func (d Decoder) Decode(frame []byte) (Frame, error) {
	maxSize := d.MaxFrameSize
	if maxSize <= 0 {
		maxSize = DefaultMaxFrameSize
	}
	if len(frame) > maxSize {
		return nil, Errorf(CodeFrameTooLarge, "%d bytes, limit %d", len(frame), maxSize)
	}
	if !utf8.Valid(frame) {
		return nil, NewError(CodeInvalidUTF8)
	}
	s := scanner{b: frame, maxDepth: d.maxDepth()}
	var fields [numFields]value
	s.skipWS()
	if s.i >= len(frame) {
		return nil, Errorf(CodeInvalidJSON, "empty frame")
	}
	if c := frame[s.i]; c != '{' {
		if err := s.scanValue(0); err != nil {
			return nil, err
		}
		if s.skipWS(); s.i != len(frame) {
			return nil, s.syntax("data after the JSON value")
		}
		return nil, Errorf(CodeNotObject, "frame is a JSON %s", kindName(c))
	}
	s.i++
	var (
		dup     *Error
		unknown keySet
	)
	for {
		key, val, done, err := s.nextMember()
		if err != nil {
			return nil, withRef(err, frame, &fields)
		}
		if done {
			break
		}
		// A stack buffer here would be moved to the heap on every call;
		// escaped keys are rare, so only they allocate.
		name := keyBytes(frame, key, nil)
		if f := fieldIndex(name); f >= 0 {
			if fields[f].present() {
				if dup == nil {
					dup = Errorf(CodeDuplicateKey, "%q", fieldName(f))
				}
				continue
			}
			fields[f] = val
		} else if unknown.add(name) && dup == nil {
			dup = Errorf(CodeDuplicateKey, "%q", name)
		}
	}
	if s.skipWS(); s.i != len(frame) {
		return nil, withRef(s.syntax("data after the object"), frame, &fields)
	}
	if dup != nil {
		return nil, withRef(dup, frame, &fields)
	}
	f, err := build(frame, &fields, d.AllowMissingID)
	if err != nil {
		return nil, withRef(err, frame, &fields)
	}
	return f, nil
}

func (d Decoder) maxDepth() int {
	switch {
	case d.MaxDepth <= 0:
		return DefaultMaxDepth
	case d.MaxDepth > MaxDepthLimit:
		return MaxDepthLimit
	}
	return d.MaxDepth
}

// build checks the known fields of a syntactically valid object and makes
// the message.
func build(frame []byte, fields *[numFields]value, allowMissingID bool) (Frame, *Error) {
	tv := fields[fieldType]
	switch {
	case !tv.present() || tv.isNull(frame):
		return nil, Errorf(CodeInvalidType, "no type")
	case tv.isString(frame):
		return buildData(frame, fields, allowMissingID)
	case frame[tv.start] == '-' || isDigit(frame[tv.start]):
		if !tv.isInt {
			return nil, Errorf(CodeInvalidType, "type %s is not an integer", frame[tv.start:tv.end])
		}
		n, ok := parseInt(frame[tv.start:tv.end])
		if !ok || !TransportType(n).Known() {
			return nil, Errorf(CodeTypeNotAllowed, "transport type %s is not in the table", frame[tv.start:tv.end])
		}
		return buildTransport(frame, fields, TransportType(n))
	}
	return nil, Errorf(CodeInvalidType, "type is a JSON %s", kindName(frame[tv.start]))
}

func buildData(frame []byte, fields *[numFields]value, allowMissingID bool) (Frame, *Error) {
	typ, err := typeString(frame, fields[fieldType])
	if err != nil {
		return nil, err
	}
	m := &DataMessage{Type: typ}
	iv := fields[fieldID]
	switch {
	case !iv.present() || iv.isNull(frame):
		if !allowMissingID {
			return nil, Errorf(CodeMissingID, "no id")
		}
	case !iv.isString(frame):
		return nil, Errorf(CodeInvalidID, "id is a JSON %s", kindName(frame[iv.start]))
	default:
		id, ok := iv.str(frame)
		switch {
		case !ok:
			return nil, Errorf(CodeInvalidUTF8, "id escapes a lone surrogate")
		case id == "" && !allowMissingID:
			return nil, Errorf(CodeMissingID, "empty id")
		case len(id) > MaxIDLength:
			return nil, Errorf(CodeInvalidID, "id of %d bytes", len(id))
		case hasControl(id):
			return nil, Errorf(CodeInvalidID, "id contains a control character")
		}
		m.ID = id
	}
	if tv := fields[fieldTime]; tv.present() && !tv.isNull(frame) {
		t, ok := tv.int64(frame)
		if !ok {
			return nil, Errorf(CodeInvalidField, "time must be an integer (Unix milliseconds)")
		}
		m.Time = t
	}
	for _, f := range [...]struct {
		idx int
		dst *string
	}{{fieldFrom, &m.From}, {fieldDest, &m.Dest}, {fieldSign, &m.Sign}} {
		if err := optString(frame, fields, f.idx, f.dst); err != nil {
			return nil, err
		}
	}
	if dv := fields[fieldData]; dv.present() {
		m.Data = dv.compact(frame)
	}
	if m.Dest != "" {
		if err := entity.ValidDest(m.Dest); err != nil {
			return nil, Errorf(CodeInvalidDest, "%w", err)
		}
	}
	return m, nil
}

func buildTransport(frame []byte, fields *[numFields]value, typ TransportType) (Frame, *Error) {
	t := &TransportMessage{Type: typ}
	if err := optString(frame, fields, fieldData, &t.Data); err != nil {
		return nil, err
	}
	if err := optString(frame, fields, fieldSign, &t.Sign); err != nil {
		return nil, err
	}
	if typ.CarriesID() {
		switch {
		case t.Data == "":
			return nil, Errorf(CodeMissingID, "transport type %d needs the message id in data", typ)
		case len(t.Data) > MaxIDLength:
			return nil, Errorf(CodeInvalidID, "id of %d bytes in data", len(t.Data))
		case hasControl(t.Data):
			return nil, Errorf(CodeInvalidID, "id in data contains a control character")
		}
	}
	return t, nil
}

// optString reads an optional string field: absent and null leave dst "".
func optString(frame []byte, fields *[numFields]value, idx int, dst *string) *Error {
	v := fields[idx]
	if !v.present() || v.isNull(frame) {
		return nil
	}
	if !v.isString(frame) {
		return Errorf(CodeInvalidField, "%s must be a string, not a JSON %s", fieldName(idx), kindName(frame[v.start]))
	}
	s, ok := v.str(frame)
	if !ok {
		return Errorf(CodeInvalidUTF8, "%s escapes a lone surrogate", fieldName(idx))
	}
	*dst = s
	return nil
}

// typeString returns a data message type, without allocating for the
// built-in ones.
func typeString(frame []byte, v value) (string, *Error) {
	if !v.esc {
		switch raw := frame[v.start+1 : v.end-1]; string(raw) {
		case TypeDirect:
			return TypeDirect, nil
		case TypeGroup:
			return TypeGroup, nil
		case TypeApp:
			return TypeApp, nil
		case TypeTyping:
			return TypeTyping, nil
		case TypeHandshake:
			return TypeHandshake, nil
		}
	}
	typ, ok := v.str(frame)
	switch {
	case !ok:
		return "", Errorf(CodeInvalidUTF8, "type escapes a lone surrogate")
	case typ == "":
		return "", Errorf(CodeInvalidType, "empty type")
	case len(typ) > MaxTypeLength:
		return "", Errorf(CodeInvalidType, "type of %d bytes, limit %d", len(typ), MaxTypeLength)
	case hasControl(typ):
		return "", Errorf(CodeInvalidType, "type contains a control character")
	}
	return typ, nil
}

// hasControl reports whether s contains an ASCII control character (C0 or
// DEL). Ids and types never may: they end up in logs, keys and metric
// labels, and the signature's canonical form separates them with '\n', so
// forbidding it there keeps that form unambiguous.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// withRef fills in the id and type of the frame an error answers, as far as
// they were read and are valid, so the ":error" reply can echo them.
func withRef(e *Error, frame []byte, fields *[numFields]value) *Error {
	if iv := fields[fieldID]; iv.isString(frame) {
		if id, ok := iv.str(frame); ok && len(id) <= MaxIDLength && !hasControl(id) {
			e.ID = id
		}
	}
	if tv := fields[fieldType]; tv.isString(frame) {
		if typ, err := typeString(frame, tv); err == nil {
			e.Type = typ
		}
	}
	return e
}

// keySet finds duplicate unknown keys: a short list, then a map once a
// frame has many (bounded by the frame size, so hostile frames cannot make
// the check quadratic).
type keySet struct {
	list []string
	m    map[string]struct{}
}

const keySetListMax = 16

// add records key and reports whether it was there already.
func (k *keySet) add(key []byte) bool {
	if k.m != nil {
		if _, ok := k.m[string(key)]; ok {
			return true
		}
		k.m[string(key)] = struct{}{}
		return false
	}
	for _, s := range k.list {
		if s == string(key) {
			return true
		}
	}
	k.list = append(k.list, string(key))
	if len(k.list) > keySetListMax {
		k.m = make(map[string]struct{}, 2*len(k.list))
		for _, s := range k.list {
			k.m[s] = struct{}{}
		}
		k.list = nil
	}
	return false
}
