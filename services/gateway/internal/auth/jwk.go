package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/golang-jwt/jwt/v5"
)

// MinRSABits is the smallest RSA modulus accepted from a key set: shorter
// keys are factorable, and a token signed by one proves nothing.
const MinRSABits = 2048

// maxRSAExponent bounds e to what rsa.PublicKey holds on every platform.
const maxRSAExponent = 1<<31 - 1

// errNoUsableKey means a key set held no key the gateway can verify
// tokens with; the previous set is kept.
var errNoUsableKey = errors.New("no usable RS256 or ES256 signing key")

// publicKey is one verification key of a key set.
type publicKey struct {
	// kid is the key's ID, "" when it has none.
	kid string
	// alg is the one JWT algorithm the key verifies: RS256 or ES256.
	alg string
	// key is *rsa.PublicKey for RS256, *ecdsa.PublicKey on P-256 for ES256.
	key any
}

// keySet is a parsed JSON Web Key Set (RFC 7517), immutable once built so
// readers share it without a lock.
type keySet struct {
	keys []publicKey
}

// candidates are the keys that may have signed a token with this alg and
// kid: those with the same kid, or every key of the alg when the token
// names none (a set with one key often omits kids).
func (s *keySet) candidates(alg, kid string) []any {
	var out []any
	for _, k := range s.keys {
		if k.alg == alg && (kid == "" || k.kid == kid) {
			out = append(out, k.key)
		}
	}
	return out
}

// jwk is the subset of a JSON Web Key (RFC 7517, RFC 7518 section 6) the
// gateway reads.
type jwk struct {
	Kty string `json:"kty"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	// N and E are an RSA key's modulus and exponent, base64url big-endian.
	N string `json:"n"`
	E string `json:"e"`
	// Crv, X and Y are an EC key's curve and coordinates, base64url.
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseKeySet parses a JWKS document. Keys the gateway cannot use are
// skipped, each with the reason in skipped: an encryption key (use other
// than "sig"), a type or curve other than RSA and EC P-256, an alg that
// does not match its type, a malformed or weak key. A set must hold at
// least one usable key.
func parseKeySet(doc []byte) (set *keySet, skipped []error, err error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(doc, &raw); err != nil {
		return nil, nil, fmt.Errorf("parse key set: %w", err)
	}
	set = &keySet{}
	for i, r := range raw.Keys {
		k, err := parseJWK(r)
		if err != nil {
			skipped = append(skipped, fmt.Errorf("key %d: %w", i, err))
			continue
		}
		set.keys = append(set.keys, k)
	}
	if len(set.keys) == 0 {
		return nil, skipped, fmt.Errorf("parse key set of %d keys: %w", len(raw.Keys), errNoUsableKey)
	}
	return set, skipped, nil
}

// parseJWK parses one key, or says why it is not usable.
func parseJWK(b []byte) (publicKey, error) {
	var k jwk
	if err := json.Unmarshal(b, &k); err != nil {
		return publicKey{}, fmt.Errorf("decode: %w", err)
	}
	if k.Use != "" && k.Use != "sig" {
		return publicKey{}, fmt.Errorf("kid %q: use %q is not sig", k.Kid, k.Use)
	}
	var (
		pk  publicKey
		err error
	)
	switch k.Kty {
	case "RSA":
		pk, err = parseRSA(&k)
	case "EC":
		pk, err = parseEC(&k)
	default:
		return publicKey{}, fmt.Errorf("kid %q: key type %q not supported", k.Kid, k.Kty)
	}
	if err != nil {
		return publicKey{}, fmt.Errorf("kid %q: %w", k.Kid, err)
	}
	// A key that names its algorithm is used for that one only; RS384 on
	// an RSA key, say, is not something the gateway verifies.
	if k.Alg != "" && k.Alg != pk.alg {
		return publicKey{}, fmt.Errorf("kid %q: alg %q on a %s key not supported", k.Kid, k.Alg, k.Kty)
	}
	pk.kid = k.Kid
	return pk, nil
}

func parseRSA(k *jwk) (publicKey, error) {
	n, err := decodeUint(k.N, "n")
	if err != nil {
		return publicKey{}, err
	}
	e, err := decodeUint(k.E, "e")
	if err != nil {
		return publicKey{}, err
	}
	if n.BitLen() < MinRSABits {
		return publicKey{}, fmt.Errorf("RSA modulus of %d bits: want at least %d", n.BitLen(), MinRSABits)
	}
	if !e.IsInt64() || e.Int64() < 3 || e.Int64() > maxRSAExponent || e.Bit(0) == 0 {
		return publicKey{}, fmt.Errorf("RSA exponent %s: want an odd number from 3 to %d", e, maxRSAExponent)
	}
	return publicKey{alg: jwt.SigningMethodRS256.Alg(), key: &rsa.PublicKey{N: n, E: int(e.Int64())}}, nil
}

func parseEC(k *jwk) (publicKey, error) {
	if k.Crv != "P-256" {
		return publicKey{}, fmt.Errorf("curve %q not supported: want P-256", k.Crv)
	}
	const size = 32 // bytes of a P-256 coordinate, fixed by RFC 7518 section 6.2.1.2
	x, err := base64.RawURLEncoding.DecodeString(k.X)
	if err != nil || len(x) != size {
		return publicKey{}, fmt.Errorf("x: want %d bytes of base64url", size)
	}
	y, err := base64.RawURLEncoding.DecodeString(k.Y)
	if err != nil || len(y) != size {
		return publicKey{}, fmt.Errorf("y: want %d bytes of base64url", size)
	}
	// The uncompressed encoding is parsed rather than the coordinates
	// set by hand: the parser checks the point is on the curve, so a
	// crafted key cannot leak anything through invalid-curve arithmetic.
	point := append(append([]byte{4}, x...), y...)
	key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		return publicKey{}, fmt.Errorf("P-256 point: %w", err)
	}
	return publicKey{alg: jwt.SigningMethodES256.Alg(), key: key}, nil
}

// decodeUint decodes a base64url big-endian unsigned integer.
func decodeUint(s, name string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("%s: want a non-empty base64url integer", name)
	}
	return new(big.Int).SetBytes(b), nil
}
