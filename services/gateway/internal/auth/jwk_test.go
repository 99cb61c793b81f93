package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"maps"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseKeySetSkipsWhatItCannotUse(t *testing.T) {
	t.Parallel()
	rsaKey, _, ecKey := testKeys(t)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	rsaJWK := jwkOf(t, "rsa", &rsaKey.PublicKey)
	ecJWK := jwkOf(t, "ec", &ecKey.PublicKey)
	with := func(base map[string]any, kv ...string) map[string]any {
		m := maps.Clone(base)
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
				continue
			}
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	b64 := base64.RawURLEncoding.EncodeToString
	offCurve := make([]byte, 32)
	offCurve[31] = 1

	tests := []struct {
		name    string
		key     map[string]any
		wantAlg string // empty: the key is skipped
	}{
		{name: "RSA signing key", key: rsaJWK, wantAlg: "RS256"},
		{name: "EC P-256 signing key", key: ecJWK, wantAlg: "ES256"},
		{name: "RSA without use or alg", key: with(rsaJWK, "use", "", "alg", ""), wantAlg: "RS256"},
		{name: "EC with alg ES256", key: with(ecJWK, "alg", "ES256"), wantAlg: "ES256"},
		{name: "encryption key", key: with(rsaJWK, "use", "enc")},
		{name: "RSA for RS384", key: with(rsaJWK, "alg", "RS384")},
		{name: "RSA claiming ES256", key: with(rsaJWK, "alg", "ES256")},
		{name: "EC claiming RS256", key: with(ecJWK, "alg", "RS256")},
		{name: "symmetric key", key: map[string]any{"kty": "oct", "k": b64([]byte("a shared secret"))}},
		{name: "OKP key", key: map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64(make([]byte, 32))}},
		{name: "EC P-384", key: with(ecJWK, "crv", "P-384")},
		{name: "EC point off the curve", key: with(ecJWK, "x", b64(offCurve), "y", b64(offCurve))},
		{name: "EC short coordinate", key: with(ecJWK, "x", b64(make([]byte, 31)))},
		{name: "RSA of 1024 bits", key: jwkOf(t, "weak", &weak.PublicKey)},
		{name: "RSA even exponent", key: with(rsaJWK, "e", b64([]byte{2}))},
		{name: "RSA huge exponent", key: with(rsaJWK, "e", b64([]byte{1, 0, 0, 0, 1}))},
		{name: "RSA n not base64url", key: with(rsaJWK, "n", "not base64!")},
		{name: "RSA without n", key: with(rsaJWK, "n", "")},
		{name: "field of the wrong type", key: map[string]any{"kty": "RSA", "n": 12}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// A usable key of the other kind keeps the set valid, so
			// only the key under test can be skipped.
			other := ecJWK
			if tt.wantAlg == "ES256" || tt.key["kty"] == "EC" {
				other = rsaJWK
			}
			set, skipped, err := parseKeySet(jwksDoc(t, tt.key, other))
			require.NoError(t, err)
			if tt.wantAlg == "" {
				require.Len(t, skipped, 1)
				require.Len(t, set.keys, 1)
				return
			}
			require.Empty(t, skipped)
			require.Len(t, set.keys, 2)
			require.Equal(t, tt.wantAlg, set.keys[0].alg)
		})
	}
}

func TestKeySetCandidates(t *testing.T) {
	t.Parallel()
	rsaKey, otherRSA, ecKey := testKeys(t)
	set, _, err := parseKeySet(jwksDoc(t, jwkOf(t, "a", &rsaKey.PublicKey), jwkOf(t, "b", &otherRSA.PublicKey), jwkOf(t, "c", &ecKey.PublicKey)))
	require.NoError(t, err)
	require.Len(t, set.candidates("RS256", "a"), 1)
	require.Len(t, set.candidates("RS256", ""), 2, "no kid: every key of the alg")
	require.Empty(t, set.candidates("ES256", "a"), "kid of a key of another type")
	require.Empty(t, set.candidates("RS256", "z"))
	require.Len(t, set.candidates("ES256", ""), 1)
}

// FuzzParseKeySet: a key set comes from outside the gateway; no document
// may crash it, and whatever it accepts is usable.
func FuzzParseKeySet(f *testing.F) {
	rsaKey, _, ecKey := testKeys(f)
	f.Add(jwksDoc(f, jwkOf(f, "rsa", &rsaKey.PublicKey), jwkOf(f, "ec", &ecKey.PublicKey)))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"","y":""}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		set, _, err := parseKeySet(doc)
		if err != nil {
			return
		}
		require.NotEmpty(t, set.keys)
		for _, k := range set.keys {
			require.Contains(t, []string{"RS256", "ES256"}, k.alg)
			require.NotNil(t, k.key)
		}
	})
}

// FuzzHeaderAlg: the header of a client's token is read before any
// signature is checked; no token may crash the reader, and an alg is only
// ever read from a header that is a JSON object.
func FuzzHeaderAlg(f *testing.F) {
	f.Add("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.c2ln")
	f.Add("eyJhbGciOjF9.e30.c2ln")
	f.Add("a.b")
	f.Add("...")
	f.Add("opaque-session-token")
	f.Fuzz(func(t *testing.T, raw string) {
		if headerAlg(raw) == "" {
			return
		}
		head, _, _ := strings.Cut(raw, ".")
		b, err := base64.RawURLEncoding.DecodeString(head)
		require.NoError(t, err)
		var h map[string]any
		require.NoError(t, json.Unmarshal(b, &h))
	})
}
