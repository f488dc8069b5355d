package main

// Optional API keys with a per-key rate limit (on when GATEWAY_API_KEYS or GATEWAY_ADMIN_API_KEYS is set).
//
// A key travels as `authorization: Bearer <key>` or `x-api-key: <key>`. No key or an unknown one: UNAUTHENTICATED.
// Keys have a scope: an admin key (GATEWAY_ADMIN_API_KEYS) may call every method; another key every method but the
// admin ones (GATEWAY_ADMIN_METHODS: RetrainModel and UpsertTracks by default), which answer it PERMISSION_DENIED.
// A key over its token bucket: RESOURCE_EXHAUSTED with a google.rpc.RetryInfo detail saying when a token is back.
// Health checks pass without a key (orchestrators and load balancers have none). An admitted call costs a hash
// and a map lookup.

import (
	"crypto/sha256"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
)

const healthPrefix = "/grpc.health.v1.Health/"

// TokenBucket: rate tokens a second, at most burst banked. Take answers 0 (taken) or how long until one is back.
type TokenBucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	stamp  time.Time
	now    func() time.Time
}

func NewTokenBucket(rate float64, burst int, now func() time.Time) *TokenBucket {
	if now == nil {
		now = time.Now
	}
	return &TokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst), stamp: now(), now: now}
}

func (b *TokenBucket) Take() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.tokens += now.Sub(b.stamp).Seconds() * b.rate
	if b.tokens > b.burst {
		b.tokens = b.burst
	}
	b.stamp = now
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}

// Keyring: the configured keys (as SHA-256 digests: a lookup compares hashes, never the secret), their scope and
// their buckets.
type Keyring struct {
	keys   map[[32]byte]*keyEntry
	rate   float64
	admins map[string]bool // full method names only an admin key may call
}

type keyEntry struct {
	bucket *TokenBucket // nil: no rate limit
	admin  bool
}

func NewKeyring(keys, adminKeys, adminMethods []string, ratePerS float64, burst int) *Keyring {
	k := &Keyring{keys: map[[32]byte]*keyEntry{}, rate: ratePerS, admins: map[string]bool{}}
	add := func(key string, admin bool) {
		var bucket *TokenBucket
		if ratePerS > 0 {
			bucket = NewTokenBucket(ratePerS, burst, nil)
		}
		k.keys[sha256.Sum256([]byte(key))] = &keyEntry{bucket: bucket, admin: admin}
	}
	for _, key := range keys {
		add(key, false)
	}
	for _, key := range adminKeys { // a key in both lists is an admin key
		add(key, true)
	}
	for _, m := range adminMethods {
		k.admins[m] = true
	}
	return k
}

// Admit checks the caller's key for method; nil when the call may go on.
func (k *Keyring) Admit(md metadata.MD, method string) *Rejection {
	key, ok := PresentedKey(md)
	if !ok {
		return reject(codes.Unauthenticated,
			"an API key is required: send it as 'authorization: Bearer <key>' or 'x-api-key: <key>'")
	}
	entry, known := k.keys[sha256.Sum256([]byte(key))]
	if !known {
		return reject(codes.Unauthenticated, "the API key is not valid")
	}
	if k.admins[method] && !entry.admin {
		return reject(codes.PermissionDenied, method+" needs an admin API key (GATEWAY_ADMIN_API_KEYS)")
	}
	if entry.bucket != nil {
		if wait := entry.bucket.Take(); wait > 0 {
			return overloaded(fmt.Sprintf("rate limit of %s calls/s for this API key exceeded",
				strconv.FormatFloat(k.rate, 'g', -1, 64)), wait)
		}
	}
	return nil
}

// PresentedKey is the key a caller sent: x-api-key, else a Bearer token in authorization.
func PresentedKey(md metadata.MD) (string, bool) {
	if v := md.Get("x-api-key"); len(v) > 0 {
		return strings.TrimSpace(v[0]), true
	}
	for _, v := range md.Get("authorization") {
		scheme, token, _ := strings.Cut(strings.TrimSpace(v), " ")
		if strings.EqualFold(scheme, "bearer") && strings.TrimSpace(token) != "" {
			return strings.TrimSpace(token), true
		}
	}
	return "", false
}
