package protocol

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

var fuzzSeeds = []string{
	`{"id":"9f1c","type":"direct","dest":"@bob@localhost","data":{"text":"hi"}}`,
	`{"id":"1","type":"group","time":1700000000123,"from":"@alice@localhost","dest":"!room@localhost","data":"text","sign":"ab"}`,
	`{"type":100,"data":"m1"}`, `{"type":200,"data":"m1","sign":"00"}`, `{"type":300,"data":"m1"}`,
	`{"type":1000,"data":"key"}`, `{"type":1001}`, `{"type":1002}`,
	`{"id":"x","type":"app","data":{"app":"chat.dim.sechat","mod":"drift_bottle","act":"throw","extra":{"a":[1,2,{"b":null}]}}}`,
	`{"id":"x","type":"handshake","data":{"title":"Hello world!","session":"k"}}`,
	`{"id":"a\"b\\c\u00e9\ud83d\ude00","type":"dir\u0065ct","\u0066rom":"x"}`,
	` { "id" : "x" , "type" : "t" , "data" : [ 1 , 2.5e-3 , -0 , true , false , null ] } `,
	`{"id":"x","type":"t","to":"@eve@x","From":"y","x":1,"x":2}`,
	`{"id":"x","type":100.5}`, `{"type":1e2}`, `{"type":-0}`, `{"type":99999999999999999999}`,
	`{"id":"x","type":"t","time":1.5}`, `{"id":"\ud800","type":"t"}`, `{"id":"x","type":"t","dest":"Bob"}`,
	`[` + strings.Repeat("[", 40) + `]`, `{"a":` + strings.Repeat(`{"a":`, 40), `"str"`, `123`, `nope`, ``,
	"{\"id\":\"\xff\",\"type\":\"t\"}", `{"id":"x","type":"t",}`, `{"id":"x","type":"t"} {}`,
}

// FuzzDecode checks that Decode never panics, agrees with encoding/json on
// what is JSON, and that whatever it accepts survives encode → decode
// unchanged.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		got, err := Decode(frame)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || !pe.Code.Known() || got != nil {
				t.Fatalf("Decode(%q) = %v, %v: want a known *Error and no frame", frame, got, err)
			}
			if pe.Code == CodeInvalidJSON && utf8.Valid(frame) && json.Valid(frame) {
				t.Fatalf("Decode(%q): 4000 for JSON that encoding/json accepts", frame)
			}
			if reply := AppendError(nil, pe); !json.Valid(reply) {
				t.Fatalf("invalid error reply %q", reply)
			}
			return
		}
		if !json.Valid(frame) {
			t.Fatalf("Decode accepted %q, which encoding/json rejects", frame)
		}
		enc := AppendFrame(nil, got)
		if !json.Valid(enc) {
			t.Fatalf("encoding of %q is not JSON: %q", frame, enc)
		}
		again, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-decode of %q (from %q): %v", enc, frame, err)
		}
		if !equalFrames(got, again) {
			t.Fatalf("round trip changed %#v into %#v", got, again)
		}
		if enc2 := AppendFrame(nil, again); string(enc2) != string(enc) {
			t.Fatalf("encoding not stable: %q then %q", enc, enc2)
		}
		if m, ok := got.(*DataMessage); ok {
			// The data parsers must not panic on anything a client sends.
			_, _ = ParseHandshake(m.Data)
			_, _ = ParseCustomizedContent(m.Data)
			_, _ = ParseError(m)
			if len(m.Data) > 0 && !json.Valid(m.Data) {
				t.Fatalf("data %q is not JSON", m.Data)
			}
		}
	})
}

func equalFrames(a, b Frame) bool {
	switch x := a.(type) {
	case *DataMessage:
		y, ok := b.(*DataMessage)
		return ok && x.ID == y.ID && x.Type == y.Type && x.Time == y.Time && x.From == y.From &&
			x.Dest == y.Dest && string(x.Data) == string(y.Data) && x.Sign == y.Sign &&
			(x.Data == nil) == (y.Data == nil)
	case *TransportMessage:
		y, ok := b.(*TransportMessage)
		return ok && *x == *y
	}
	return false
}

// FuzzParseData checks the parsers of "data" contents on arbitrary bytes.
func FuzzParseData(f *testing.F) {
	for _, s := range []string{
		`{"title":"Hello world!","session":"k"}`, `{"title":"DIM!"}`, `{"title":null}`,
		`{"app":"chat.dim.sechat","mod":"drift_bottle","act":"throw","extra":{"x":1}}`,
		`{"app":"a..b","mod":"*","act":">"}`, `{"errCode":4000,"errText":"x","errPayload":{}}`,
		`[]`, `{`, `{"a":` + strings.Repeat("[", 50),
		`{"users":["@bob@localhost","carol"]}`, `{"users":[]}`, `{"users":"bob"}`, `{"users":[1]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if h, err := ParseHandshake(data); err == nil {
			if back, err := ParseHandshake(AppendHandshake(nil, h)); err != nil || back != h {
				t.Fatalf("handshake round trip %#v: %#v, %v", h, back, err)
			}
		}
		if c, err := ParseCustomizedContent(data); err == nil {
			if strings.ContainsAny(c.SubjectSuffix(), " *>\t\r\n") || strings.Count(c.SubjectSuffix(), ".") != 2 {
				t.Fatalf("unsafe subject suffix %q", c.SubjectSuffix())
			}
			if _, err := ParseCustomizedContent(AppendCustomizedContent(nil, c)); err != nil {
				t.Fatalf("customized content round trip %#v: %v", c, err)
			}
		}
		if users, err := ParsePresenceUsers(data); err == nil {
			if len(users) == 0 || len(users) > MaxPresenceUsers {
				t.Fatalf("presence request of %d users accepted", len(users))
			}
			for _, u := range users {
				if ev := AppendPresence(nil, u, true, 1); !json.Valid(ev) {
					t.Fatalf("presence event for %q is not JSON: %s", u, ev)
				}
			}
		} else if !errors.Is(err, NewError(CodeInvalidPresence)) {
			t.Fatalf("presence request refused with %v", err)
		}
		_, _ = ParseError(&DataMessage{Type: "x:error", Data: data})
		if reply := AppendError(nil, &Error{Code: CodeInternal, Payload: data}); !json.Valid(reply) {
			t.Fatalf("invalid error reply for payload %q", data)
		}
	})
}
