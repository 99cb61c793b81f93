package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Defaults of JWKSOptions.
const (
	// DefaultJWKSRefresh is how often the key set is fetched again.
	DefaultJWKSRefresh = 10 * time.Minute
	// DefaultJWKSMinRefetch is the shortest time between two fetches
	// caused by tokens naming a kid the cached set does not hold: a flood
	// of forged kids costs the JWKS server one request per window.
	DefaultJWKSMinRefetch = 30 * time.Second
	// DefaultJWKSTimeout bounds one fetch, body included.
	DefaultJWKSTimeout = 5 * time.Second
	// DefaultJWKSMaxBytes bounds the key set document; a set of a few
	// dozen keys is a few tens of KiB.
	DefaultJWKSMaxBytes = 1 << 20
)

// The first retry after a failed fetch comes after jwksFirstRetry, then
// twice as long each time up to jwksMaxRetry (or the refresh interval if
// shorter), so a gateway that started before its identity provider gets
// keys soon after it appears without hammering it while it is down.
const (
	jwksFirstRetry = time.Second
	jwksMaxRetry   = time.Minute
)

// errRefetchLimited means a kid was unknown but a fetch for an unknown kid
// already ran within MinRefetch.
var errRefetchLimited = errors.New("key set refetch rate-limited")

// JWKSOptions configures NewJWKS.
type JWKSOptions struct {
	// URL serves the JSON Web Key Set (RFC 7517), https:// or http://.
	// Required.
	URL string
	// Refresh is how often the set is fetched again; default
	// DefaultJWKSRefresh.
	Refresh time.Duration
	// MinRefetch is the shortest time between two fetches caused by an
	// unknown kid; default DefaultJWKSMinRefetch.
	MinRefetch time.Duration
	// Timeout bounds one fetch; default DefaultJWKSTimeout.
	Timeout time.Duration
	// MaxBytes bounds the document; default DefaultJWKSMaxBytes.
	MaxBytes int64
	// Client fetches the set; nil means a client of its own.
	Client *http.Client
	// ServerName is the server part of the identities.
	ServerName string
	// ValidUsername checks the sub claim against the username rule.
	// Required.
	ValidUsername func(string) bool
	// Logger reports fetches; nil discards.
	Logger *slog.Logger
}

// JWKS verifies RS256 and ES256 tokens with the keys of a JSON Web Key Set
// fetched from a URL. The set is cached: Run fetches it at start, retrying
// with backoff until it loads, then every Refresh. A token whose kid the
// cached set does not hold makes the next request fetch the set at once,
// for a key rotated in since the last refresh, but at most once per
// MinRefetch: tokens with forged kids cost the identity provider nothing
// more. Until a set has loaded, tokens are refused with ErrUnavailable
// (503), not as invalid.
//
// Only RS256 with an RSA key and ES256 with an EC P-256 key are accepted:
// the algorithm must be the one of the key the kid names, so a public key
// can never serve as an HMAC secret, and "none" never passes. exp is
// required, with Leeway, as for HS256.
//
// A JWKS is safe for concurrent use.
type JWKS struct {
	opts   JWKSOptions
	parser *jwt.Parser
	log    *slog.Logger
	// now is the clock of the refetch window; tests move it.
	now func() time.Time

	// keys is the last set loaded; nil until one has.
	keys atomic.Pointer[keySet]

	// mu guards inflight and lastKidFetch.
	mu sync.Mutex
	// inflight is the fetch running now, which every caller shares; nil
	// when none is.
	inflight *fetchFlight
	// lastKidFetch is when the last fetch caused by an unknown kid started.
	lastKidFetch time.Time
}

// fetchFlight is one fetch of the set shared by every caller that wants
// one meanwhile, so a burst of unknown kids or the refresher arriving at
// the same time make one request.
type fetchFlight struct {
	done chan struct{}
	err  error // set before done is closed
}

// NewJWKS returns a verifier for the key set at opts.URL. It fetches
// nothing: Run does, and must be running for keys to load.
func NewJWKS(opts JWKSOptions) (*JWKS, error) {
	if opts.URL == "" {
		return nil, errors.New("new jwks: no URL")
	}
	if opts.ValidUsername == nil {
		return nil, errors.New("new jwks: no username rule")
	}
	if opts.Refresh <= 0 {
		opts.Refresh = DefaultJWKSRefresh
	}
	if opts.MinRefetch <= 0 {
		opts.MinRefetch = DefaultJWKSMinRefetch
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultJWKSTimeout
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultJWKSMaxBytes
	}
	if opts.Client == nil {
		opts.Client = &http.Client{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &JWKS{
		opts: opts,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(Leeway),
		),
		log: log.With("jwks", opts.URL),
		now: time.Now,
	}, nil
}

// Authenticate implements Authenticator: the token must be an RS256 or
// ES256 JWT signed by a key of the set.
func (j *JWKS) Authenticate(ctx context.Context, r *http.Request) (Identity, error) {
	raw, err := Token(r)
	if err != nil {
		return Identity{}, err
	}
	return j.verify(ctx, raw)
}

// verify checks a raw token.
func (j *JWKS) verify(ctx context.Context, raw string) (Identity, error) {
	var claims jwt.RegisteredClaims
	_, err := j.parser.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) { return j.key(ctx, t) })
	if err != nil {
		return Identity{}, fmt.Errorf("authenticate %v: %w", j.opts.URL, jwtError(err))
	}
	return identityOf(&claims, j.opts.ServerName, j.opts.ValidUsername)
}

// key returns the keys that may have signed t, fetching the set again
// when t's kid is unknown and the refetch window allows.
func (j *JWKS) key(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	// The parser admits RS256 and ES256 only; checking again keeps a
	// future parser option from turning a public key into anything else.
	if alg != jwt.SigningMethodRS256.Alg() && alg != jwt.SigningMethodES256.Alg() {
		return nil, fmt.Errorf("signing method %q: %w", alg, ErrInvalidToken)
	}
	kid, _ := t.Header["kid"].(string)
	if set := j.keys.Load(); set != nil {
		if keys := set.candidates(alg, kid); len(keys) > 0 {
			return verificationKeys(keys), nil
		}
	}
	err := j.load(ctx, true)
	set := j.keys.Load()
	if set == nil {
		if err == nil { // a fetch that succeeded stored a set; only for the message
			err = errNoUsableKey
		}
		return nil, fmt.Errorf("no key set loaded yet: %w: %w", ErrUnavailable, err)
	}
	if keys := set.candidates(alg, kid); len(keys) > 0 {
		return verificationKeys(keys), nil
	}
	if err != nil && !errors.Is(err, errRefetchLimited) {
		// The set could not be checked for a new key: the kid may be a
		// legitimate one rotated in since the last refresh.
		return nil, fmt.Errorf("kid %q: %w: %w", kid, ErrUnavailable, err)
	}
	return nil, fmt.Errorf("no %s key with kid %q: %w", alg, kid, ErrInvalidToken)
}

// verificationKeys hands the parser one key, or several to try in turn.
func verificationKeys(keys []any) any {
	if len(keys) == 1 {
		return keys[0]
	}
	set := jwt.VerificationKeySet{Keys: make([]jwt.VerificationKey, len(keys))}
	for i, k := range keys {
		set.Keys[i] = k
	}
	return set
}

// Loaded reports whether a key set has loaded, so tokens can be verified.
func (j *JWKS) Loaded() bool { return j.keys.Load() != nil }

// Run loads the key set and keeps it fresh until ctx ends: a fetch at once,
// retried with backoff while it fails, then one every Refresh. A failed
// refresh keeps the set already loaded. Run returns nil when ctx ends;
// nothing is left running.
func (j *JWKS) Run(ctx context.Context) error {
	// Idle keep-alive connections would outlive Run otherwise.
	defer j.opts.Client.CloseIdleConnections()
	retry := jwksFirstRetry
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		wait := j.opts.Refresh
		if err := j.load(ctx, false); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			wait = min(retry, jwksMaxRetry, j.opts.Refresh)
			retry = min(2*retry, jwksMaxRetry)
			// A set loaded before stays in use.
			j.log.WarnContext(ctx, "jwks fetch failed", "loaded", j.Loaded(), "retry_in", wait, "err", err)
		} else {
			retry = jwksFirstRetry
		}
		timer.Reset(wait)
	}
}

// load fetches the set once, or waits for the fetch already running. A
// fetch for an unknown kid (kidMiss) is refused with errRefetchLimited if
// another one started within MinRefetch.
func (j *JWKS) load(ctx context.Context, kidMiss bool) error {
	j.mu.Lock()
	if f := j.inflight; f != nil {
		j.mu.Unlock()
		select {
		case <-f.done:
			return f.err
		case <-ctx.Done():
			return fmt.Errorf("wait for jwks fetch: %w", ctx.Err())
		}
	}
	if kidMiss {
		now := j.now()
		if !j.lastKidFetch.IsZero() && now.Sub(j.lastKidFetch) < j.opts.MinRefetch {
			j.mu.Unlock()
			return errRefetchLimited
		}
		j.lastKidFetch = now
	}
	f := &fetchFlight{done: make(chan struct{})}
	j.inflight = f
	j.mu.Unlock()

	// A fetch for a request outlives the request, bounded by its own
	// timeout: others wait for it, and a client hanging up must not spoil
	// it for them. The refresher's fetch ends with the refresher.
	base := ctx
	if kidMiss {
		base = context.WithoutCancel(ctx)
	}
	fctx, cancel := context.WithTimeout(base, j.opts.Timeout)
	f.err = j.fetch(fctx)
	cancel()

	j.mu.Lock()
	j.inflight = nil
	j.mu.Unlock()
	close(f.done)
	return f.err
}

// fetch gets and parses the set and, if it holds a usable key, makes it
// the current one.
func (j *JWKS) fetch(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.opts.URL, nil)
	if err != nil {
		return fmt.Errorf("jwks request: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := j.opts.Client.Do(req)
	if err != nil {
		return fmt.Errorf("jwks fetch: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("jwks fetch: status %s", resp.Status)
	}
	// One byte more than allowed tells a document at the limit from one
	// over it.
	body, err := io.ReadAll(io.LimitReader(resp.Body, j.opts.MaxBytes+1))
	if err != nil {
		return fmt.Errorf("jwks read: %w", err)
	}
	if int64(len(body)) > j.opts.MaxBytes {
		return fmt.Errorf("jwks read: document over %d bytes", j.opts.MaxBytes)
	}
	set, skipped, err := parseKeySet(body)
	for _, s := range skipped {
		j.log.DebugContext(ctx, "jwks key skipped", "err", s)
	}
	if err != nil {
		return err
	}
	if old := j.keys.Swap(set); old == nil {
		j.log.InfoContext(ctx, "jwks key set loaded", "keys", len(set.keys), "skipped", len(skipped))
	}
	return nil
}
