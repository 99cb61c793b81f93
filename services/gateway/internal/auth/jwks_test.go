package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

// waitFor bounds every wait so a broken refresher fails the test instead
// of hanging it; it is not a performance assertion.
const waitFor = 10 * time.Second

// Keys are generated once: RSA generation is slow under -race.
var (
	rsaKey, otherRSAKey *rsa.PrivateKey
	ecKey               *ecdsa.PrivateKey
	keysErr             error
	keysOnce            sync.Once
)

func testKeys(t testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey, *ecdsa.PrivateKey) {
	t.Helper()
	keysOnce.Do(func() {
		rsaKey, keysErr = rsa.GenerateKey(rand.Reader, 2048)
		if keysErr == nil {
			otherRSAKey, keysErr = rsa.GenerateKey(rand.Reader, 2048)
		}
		if keysErr == nil {
			ecKey, keysErr = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		}
	})
	require.NoError(t, keysErr)
	return rsaKey, otherRSAKey, ecKey
}

// jwkOf is the JWK of pub ("sig" use, with its alg) named kid.
func jwkOf(t testing.TB, kid string, pub any) map[string]any {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		point, err := k.Bytes()
		require.NoError(t, err)
		return map[string]any{"kty": "EC", "kid": kid, "use": "sig", "crv": "P-256", "x": b64(point[1:33]), "y": b64(point[33:])}
	default:
		t.Fatalf("no JWK for %T", pub)
		return nil
	}
}

// jwksDoc is a key set document of keys.
func jwksDoc(t testing.TB, keys ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	require.NoError(t, err)
	return b
}

// signKid signs claims with method and key, naming kid in the header ("" for
// none).
func signKid(t testing.TB, method jwt.SigningMethod, key any, kid string, c jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

// keyServer serves a key set document it can change, counting requests.
type keyServer struct {
	srv      *httptest.Server
	requests atomic.Int64

	mu     sync.Mutex
	doc    []byte
	status int
}

func startKeyServer(t testing.TB, doc []byte) *keyServer {
	t.Helper()
	k := &keyServer{doc: doc, status: http.StatusOK}
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		k.requests.Add(1)
		k.mu.Lock()
		doc, code := k.doc, k.status
		k.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.WriteHeader(code)
		_, _ = w.Write(doc)
	}))
	t.Cleanup(k.srv.Close)
	return k
}

func (k *keyServer) serve(status int, doc []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.status, k.doc = status, doc
}

// newJWKS is a JWKS of k's URL, not running.
func newJWKS(t testing.TB, k *keyServer, mods ...func(*JWKSOptions)) *JWKS {
	t.Helper()
	opts := JWKSOptions{URL: k.srv.URL + "/jwks.json", Client: k.srv.Client(), ServerName: "example.org", ValidUsername: username}
	for _, m := range mods {
		m(&opts)
	}
	j, err := NewJWKS(opts)
	require.NoError(t, err)
	return j
}

// run runs j's refresher until the test ends.
func run(t testing.TB, j *JWKS) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}

// authenticate runs a's Authenticate on a request bearing tok.
func authenticate(t testing.TB, a Authenticator, tok string) (Identity, error) {
	t.Helper()
	return a.Authenticate(t.Context(), bearer(tok))
}

func TestJWKSVerifiesRS256AndES256(t *testing.T) {
	t.Parallel()
	rsaKey, otherRSA, ecKey := testKeys(t)
	k := startKeyServer(t, jwksDoc(t, jwkOf(t, "rsa-1", &rsaKey.PublicKey), jwkOf(t, "ec-1", &ecKey.PublicKey)))
	j := newJWKS(t, k)
	require.NoError(t, j.load(t.Context(), false))
	// The public key as an HMAC secret: the classic algorithm confusion.
	rsaPublicBytes := rsaKey.N.Bytes()

	tests := []struct {
		name    string
		token   string
		wantErr error
	}{
		{name: "RS256 with its kid", token: signKid(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims("alice", time.Hour))},
		{name: "ES256 with its kid", token: signKid(t, jwt.SigningMethodES256, ecKey, "ec-1", claims("alice", time.Hour))},
		{name: "RS256 without kid", token: signKid(t, jwt.SigningMethodRS256, rsaKey, "", claims("alice", time.Hour))},
		{name: "ES256 without kid", token: signKid(t, jwt.SigningMethodES256, ecKey, "", claims("alice", time.Hour))},
		{name: "RS256 naming the EC key", token: signKid(t, jwt.SigningMethodRS256, rsaKey, "ec-1", claims("alice", time.Hour)), wantErr: ErrInvalidToken},
		{name: "ES256 naming the RSA key", token: signKid(t, jwt.SigningMethodES256, ecKey, "rsa-1", claims("alice", time.Hour)), wantErr: ErrInvalidToken},
		{name: "PS256 with the RSA key", token: signKid(t, jwt.SigningMethodPS256, rsaKey, "rsa-1", claims("alice", time.Hour)), wantErr: ErrInvalidToken},
		{name: "RS512 with the RSA key", token: signKid(t, jwt.SigningMethodRS512, rsaKey, "rsa-1", claims("alice", time.Hour)), wantErr: ErrInvalidToken},
		{name: "HS256 keyed by the public key", token: signKid(t, jwt.SigningMethodHS256, rsaPublicBytes, "rsa-1", claims("alice", time.Hour)), wantErr: ErrInvalidToken},
		{name: "alg none", token: signKid(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "rsa-1", claims("alice", time.Hour)), wantErr: ErrInvalidToken},
		{name: "signed by another key", token: signKid(t, jwt.SigningMethodRS256, otherRSA, "rsa-1", claims("alice", time.Hour)), wantErr: ErrInvalidToken},
		{name: "expired", token: signKid(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims("alice", -time.Minute)), wantErr: ErrExpired},
		{name: "no exp", token: signKid(t, jwt.SigningMethodES256, ecKey, "ec-1", jwt.RegisteredClaims{Subject: "alice"}), wantErr: ErrInvalidToken},
		{name: "sub outside charset", token: signKid(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims("Alice", time.Hour)), wantErr: ErrBadSubject},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := authenticate(t, j, tt.token)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.Equal(t, tt.wantErr.Error(), Reason(err))
				return
			}
			require.NoError(t, err)
			require.Equal(t, "@alice@example.org", got.User)
			require.Equal(t, "alice", got.Username)
			require.WithinDuration(t, time.Now().Add(time.Hour), got.ExpiresAt, time.Minute)
		})
	}
}

func TestJWKSUnknownKidRefetchesOnceThenIsRateLimited(t *testing.T) {
	t.Parallel()
	rsaKey, _, _ := testKeys(t)
	k := startKeyServer(t, jwksDoc(t, jwkOf(t, "rsa-1", &rsaKey.PublicKey)))
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	j := newJWKS(t, k, func(o *JWKSOptions) { o.MinRefetch = 30 * time.Second })
	j.now = func() time.Time { return time.Unix(0, now.Load()) }
	run(t, j)
	require.Eventually(t, j.Loaded, waitFor, 5*time.Millisecond)
	require.EqualValues(t, 1, k.requests.Load())

	forged := func(kid string) string {
		return signKid(t, jwt.SigningMethodRS256, rsaKey, kid, claims("alice", time.Hour))
	}
	_, err := authenticate(t, j, forged("unknown-1"))
	require.ErrorIs(t, err, ErrInvalidToken)
	require.EqualValues(t, 2, k.requests.Load(), "an unknown kid fetches the set again")

	for i := range 20 {
		_, err := authenticate(t, j, forged("unknown-burst-"+string(rune('a'+i))))
		require.ErrorIs(t, err, ErrInvalidToken)
	}
	require.EqualValues(t, 2, k.requests.Load(), "more unknown kids within the window fetch nothing")

	_, err = authenticate(t, j, forged("rsa-1"))
	require.NoError(t, err, "a known kid still works while refetching is limited")

	now.Add(int64(30 * time.Second))
	_, err = authenticate(t, j, forged("unknown-2"))
	require.ErrorIs(t, err, ErrInvalidToken)
	require.EqualValues(t, 3, k.requests.Load(), "the next window allows one fetch again")
}

func TestJWKSConcurrentUnknownKidsShareOneFetch(t *testing.T) {
	t.Parallel()
	rsaKey, otherRSA, _ := testKeys(t)
	k := startKeyServer(t, jwksDoc(t, jwkOf(t, "rsa-1", &rsaKey.PublicKey)))
	j := newJWKS(t, k)
	require.NoError(t, j.load(t.Context(), false))
	k.serve(http.StatusOK, jwksDoc(t, jwkOf(t, "rsa-1", &rsaKey.PublicKey), jwkOf(t, "rsa-2", &otherRSA.PublicKey)))

	tok := signKid(t, jwt.SigningMethodRS256, otherRSA, "rsa-2", claims("alice", time.Hour))
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Go(func() { _, errs[i] = authenticate(t, j, tok) })
	}
	wg.Wait()
	// Every caller either started the one fetch, waited for it, or came
	// after it: none may be refused for the window.
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.EqualValues(t, 2, k.requests.Load())
}

func TestJWKSKeyRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey, _ := testKeys(t)
	k := startKeyServer(t, jwksDoc(t, jwkOf(t, "old", &oldKey.PublicKey)))
	j := newJWKS(t, k)
	run(t, j)
	require.Eventually(t, j.Loaded, waitFor, 5*time.Millisecond)

	// The identity provider rotates: the new key is published and signs
	// a token before the gateway's next refresh.
	k.serve(http.StatusOK, jwksDoc(t, jwkOf(t, "new", &newKey.PublicKey)))
	got, err := authenticate(t, j, signKid(t, jwt.SigningMethodRS256, newKey, "new", claims("alice", time.Hour)))
	require.NoError(t, err)
	require.Equal(t, "@alice@example.org", got.User)
	require.EqualValues(t, 2, k.requests.Load())

	_, err = authenticate(t, j, signKid(t, jwt.SigningMethodRS256, oldKey, "old", claims("alice", time.Hour)))
	require.ErrorIs(t, err, ErrInvalidToken, "a key gone from the set is gone from the cache")
}

func TestJWKSRefreshesPeriodically(t *testing.T) {
	t.Parallel()
	rsaKey, _, _ := testKeys(t)
	k := startKeyServer(t, jwksDoc(t, jwkOf(t, "rsa-1", &rsaKey.PublicKey)))
	j := newJWKS(t, k, func(o *JWKSOptions) { o.Refresh = 20 * time.Millisecond })
	run(t, j)
	require.Eventually(t, func() bool { return k.requests.Load() >= 3 }, waitFor, 5*time.Millisecond)
}

func TestJWKSNotLoadedIsUnavailableUntilItLoads(t *testing.T) {
	t.Parallel()
	rsaKey, _, _ := testKeys(t)
	k := startKeyServer(t, []byte("down"))
	k.serve(http.StatusInternalServerError, []byte("down"))
	j := newJWKS(t, k)
	run(t, j)
	tok := signKid(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims("alice", time.Hour))
	require.Eventually(t, func() bool { return k.requests.Load() >= 1 }, waitFor, 5*time.Millisecond)

	_, err := authenticate(t, j, tok)
	require.ErrorIs(t, err, ErrUnavailable, "no key set yet is an outage, not a bad token")
	require.Equal(t, "authentication unavailable", Reason(err))
	require.False(t, j.Loaded())

	// The refresher keeps trying and the gateway starts accepting tokens
	// without a restart.
	k.serve(http.StatusOK, jwksDoc(t, jwkOf(t, "rsa-1", &rsaKey.PublicKey)))
	require.Eventually(t, j.Loaded, waitFor, 5*time.Millisecond)
	_, err = authenticate(t, j, tok)
	require.NoError(t, err)
}

func TestJWKSUnknownKidWhileServerDownIsUnavailable(t *testing.T) {
	t.Parallel()
	rsaKey, otherRSA, _ := testKeys(t)
	k := startKeyServer(t, jwksDoc(t, jwkOf(t, "rsa-1", &rsaKey.PublicKey)))
	j := newJWKS(t, k)
	require.NoError(t, j.load(t.Context(), false))
	k.serve(http.StatusBadGateway, nil)
	_, err := authenticate(t, j, signKid(t, jwt.SigningMethodRS256, otherRSA, "rotated", claims("alice", time.Hour)))
	require.ErrorIs(t, err, ErrUnavailable, "a kid that could not be looked up may be legitimate")
	_, err = authenticate(t, j, signKid(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims("alice", time.Hour)))
	require.NoError(t, err, "the cached set keeps working")
}

func TestJWKSBadDocumentsKeepThePreviousSet(t *testing.T) {
	t.Parallel()
	rsaKey, _, _ := testKeys(t)
	good := jwksDoc(t, jwkOf(t, "rsa-1", &rsaKey.PublicKey))
	tests := []struct {
		name    string
		status  int
		doc     []byte
		wantErr string
	}{
		{name: "body too large", status: http.StatusOK, doc: append(append([]byte(nil), good...), strings.Repeat(" ", 4096)...), wantErr: "over 4096 bytes"},
		{name: "not JSON", status: http.StatusOK, doc: []byte("<html>"), wantErr: "parse key set"},
		{name: "keys not a list", status: http.StatusOK, doc: []byte(`{"keys":{}}`), wantErr: "parse key set"},
		{name: "no usable key", status: http.StatusOK, doc: []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`), wantErr: errNoUsableKey.Error()},
		{name: "empty set", status: http.StatusOK, doc: []byte(`{"keys":[]}`), wantErr: errNoUsableKey.Error()},
		{name: "not found", status: http.StatusNotFound, doc: good, wantErr: "status 404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k := startKeyServer(t, good)
			j := newJWKS(t, k, func(o *JWKSOptions) { o.MaxBytes = 4096 })
			require.Less(t, len(good), 4096)

			// Before any set: the document is refused and tokens get 503.
			k.serve(tt.status, tt.doc)
			require.ErrorContains(t, j.load(t.Context(), false), tt.wantErr)
			require.False(t, j.Loaded())

			// After a set: the bad document is refused and the set stays.
			k.serve(http.StatusOK, good)
			require.NoError(t, j.load(t.Context(), false))
			k.serve(tt.status, tt.doc)
			require.ErrorContains(t, j.load(t.Context(), false), tt.wantErr)
			_, err := authenticate(t, j, signKid(t, jwt.SigningMethodRS256, rsaKey, "rsa-1", claims("alice", time.Hour)))
			require.NoError(t, err)
		})
	}
}

func TestJWKSFetchTimesOut(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	j, err := NewJWKS(JWKSOptions{URL: srv.URL, Client: srv.Client(), Timeout: 50 * time.Millisecond, ValidUsername: username})
	require.NoError(t, err)
	require.ErrorIs(t, j.load(t.Context(), false), context.DeadlineExceeded)
}

func TestNewJWKSNeedsURLAndUsernameRule(t *testing.T) {
	t.Parallel()
	_, err := NewJWKS(JWKSOptions{ValidUsername: username})
	require.Error(t, err)
	_, err = NewJWKS(JWKSOptions{URL: "https://idp.example/jwks.json"})
	require.Error(t, err)
}
