package main

// Optional API keys with a per-key rate limit (on only when GATEWAY_API_KEYS is set).
//
// A key travels as `authorization: Bearer <key>` or `x-api-key: <key>`. No key or an unknown one: UNAUTHENTICATED.
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

// Keyring: the configured keys (as SHA-256 digests: a lookup compares hashes, never the secret) and their buckets.
type Keyring struct {
	buckets map[[32]byte]*TokenBucket // nil bucket: no rate limit
	rate    float64
}

func NewKeyring(keys []string, ratePerS float64, burst int) *Keyring {
	k := &Keyring{buckets: map[[32]byte]*TokenBucket{}, rate: ratePerS}
	for _, key := range keys {
		var bucket *TokenBucket
		if ratePerS > 0 {
			bucket = NewTokenBucket(ratePerS, burst, nil)
		}
		k.buckets[sha256.Sum256([]byte(key))] = bucket
	}
	return k
}

// Admit checks the caller's key; nil when the call may go on.
func (k *Keyring) Admit(md metadata.MD) *Rejection {
	key, ok := PresentedKey(md)
	if !ok {
		return reject(codes.Unauthenticated,
			"an API key is required: send it as 'authorization: Bearer <key>' or 'x-api-key: <key>'")
	}
	bucket, known := k.buckets[sha256.Sum256([]byte(key))]
	if !known {
		return reject(codes.Unauthenticated, "the API key is not valid")
	}
	if bucket != nil {
		if wait := bucket.Take(); wait > 0 {
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
