package origin

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPolicy(t *testing.T) {
	t.Parallel()
	p, err := Parse(" https://chat.example.com, http://localhost:8080 ,https://*.example.org")
	require.NoError(t, err)
	for origin, want := range map[string]bool{
		"":                                  true, // not a browser
		"https://chat.example.com":          true,
		"HTTPS://Chat.Example.com":          true,
		"https://chat.example.com/":         true,
		"http://chat.example.com":           false, // another scheme
		"https://chat.example.com:444":      false, // another port
		"https://evil.com":                  false,
		"https://chat.example.com.evil.com": false,
		"http://localhost:8080":             true,
		"http://localhost":                  false,
		"https://a.example.org":             true,
		"https://a.b.example.org:8443":      true,
		"https://example.org":               false, // the wildcard covers subdomains only
		"https://badexample.org":            false,
		"null":                              false,
		"https://chat.example.com/path":     false,
		"https://user@chat.example.com":     false,
		"not an origin":                     false,
	} {
		require.Equal(t, want, p.Allow(origin), "origin %q", origin)
	}
}

func TestEmptyOrStarAllowsEverything(t *testing.T) {
	t.Parallel()
	for _, list := range []string{"", " , ", "*", "https://a.com,*"} {
		p, err := Parse(list)
		require.NoError(t, err)
		require.Nil(t, p, list)
		require.True(t, p.Allow("https://anything.example"))
		require.True(t, p.Allow("null"))
	}
}

func TestParseReportsEveryBadPattern(t *testing.T) {
	t.Parallel()
	_, err := Parse("chat.example.com,https://ok.com,https://a.com/path,https://*.,ftp://")
	require.ErrorIs(t, err, ErrInvalid)
	for _, bad := range []string{`"chat.example.com"`, `"https://a.com/path"`, `"https://*."`, `"ftp://"`} {
		require.Contains(t, err.Error(), bad)
	}
	require.NotContains(t, err.Error(), "ok.com")
}

// FuzzAllow feeds arbitrary Origin headers to a policy: it must never
// panic, must ignore case as origins do, and must allow only headers that
// are origins. (Case is ASCII case: Unicode case mappings such as U+017F
// to "S" would turn a non-origin into an origin.)
func FuzzAllow(f *testing.F) {
	for _, s := range []string{"https://a.example.org", "null", "", "http://[::1]:80", "https://x/%zz", "https://chat.example.com"} {
		f.Add(s)
	}
	p, err := Parse("https://chat.example.com,https://*.example.org")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, header string) {
		allowed := p.Allow(header)
		if allowed != p.Allow(asciiUpper(header)) {
			t.Fatalf("Allow(%q) depends on case", header)
		}
		if _, ok := canonical(asciiLower(header)); allowed && header != "" && !ok {
			t.Fatalf("allowed %q, which is not an origin", header)
		}
	})
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
