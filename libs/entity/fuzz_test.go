package entity

import (
	"testing"
)

// FuzzParse checks that Parse never panics and that every accepted ID has
// exactly one spelling: String gives back the input, and parsing that again
// gives the same ID.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"@bob@localhost", "#general:example.org:8080", "!4d6e8f10-0a1b@localhost",
		"&4d6e8f10-0a1b-4c2d-9e3f-5a6b7c8d9e0f:chat.example.com", "%447700900123:localhost",
		"^alice_at_example.com:localhost", "@bob@[::1]:8448", "@bob@127.0.0.1:1",
		"@bob@[::1", "@bob@localhost:0", "@Bob@localhost", "@bob@example.com.", "",
		"@", "bob", "@bob@256.1.1.1", "@bob@[::ffff:1.2.3.4]", "^_at_:x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Parse(s)
		if err != nil {
			if !id.IsZero() {
				t.Fatalf("Parse(%q) returned %#v with error %v", s, id, err)
			}
			return
		}
		if got := id.String(); got != s {
			t.Fatalf("Parse(%q).String() = %q", s, got)
		}
		again, err := Parse(id.String())
		if err != nil || again != id {
			t.Fatalf("round trip of %q: %#v, %v", s, again, err)
		}
		if _, err := New(id.Kind, id.Local, id.Server); err != nil {
			t.Fatalf("New rejects parsed %q: %v", s, err)
		}
		if id.Kind == KindUser {
			if u, err := ResolveUser(s, "localhost"); err != nil || u != id {
				t.Fatalf("ResolveUser(%q) = %#v, %v", s, u, err)
			}
		}
		if err := ValidDest(s); err != nil {
			t.Fatalf("ValidDest(%q): %v", s, err)
		}
	})
}
