package main

// Per-call bookkeeping, for every RPC of every shape (the runtime's interceptor, libs/runtime/.../interceptors.py):
// the request id (the caller's x-request-id or one made here; sent upstream and back in the trailing metadata),
// calls in flight, latency by method and code, the access log line, API keys, and the concurrency limit.

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

type call struct {
	g            *Gateway
	method       string
	requestID    string
	incoming     metadata.MD
	started      time.Time
	metrics      *methodMetrics
	setTrailerFn func(metadata.MD) error
	trailerSet   bool
}

// serverStream carries the call and its route to the handler.
type serverStream struct {
	grpc.ServerStream
	call  *call
	route route
}

// Request ids: 16 hex digits, unique in this process and unlikely to repeat across processes: a random key and a
// counter through splitmix64, a bijection (no system call per call, unlike reading crypto/rand).
var idKey, idCounter = func() uint64 {
	var b [8]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand does not fail on Linux
	return binary.LittleEndian.Uint64(b[:])
}(), uint64(0)

func newRequestID() string {
	x := idKey + atomic.AddUint64(&idCounter, 1)*0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	x ^= x >> 31
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], x)
	return hex.EncodeToString(b[:])
}

func (g *Gateway) begin(ctx context.Context, method string) *call {
	md, _ := metadata.FromIncomingContext(ctx)
	c := &call{g: g, method: method, incoming: md, started: time.Now(), metrics: g.metrics.method(method)}
	if ids := md.Get(requestIDKey); len(ids) > 0 && ids[0] != "" {
		c.requestID = ids[0]
	} else {
		c.requestID = newRequestID()
	}
	c.metrics.inFlight.Inc()
	return c
}

// setTrailer sends md (an upstream's trailing metadata) back with the call's request id, unless it has one.
func (c *call) setTrailer(md metadata.MD) {
	if c.trailerSet {
		return
	}
	c.trailerSet = true
	out := md.Copy()
	if len(out.Get(requestIDKey)) == 0 {
		out.Set(requestIDKey, c.requestID)
	}
	c.setTrailerFn(out) //nolint:errcheck // fails only once the call is over
}

// reject answers the call with a status of the gateway's own (logged, as the runtime logs a ServiceError).
func (c *call) reject(r *Rejection) error {
	c.g.log.Log(levelInfo, "maas.access", c.requestID, "rejected", "method", c.method,
		"code", codeName(r.st.Code()), "reason", r.st.Message())
	return r
}

func (c *call) finish(err error) {
	c.setTrailer(nil)
	code := status.Code(err)
	if err == context.Canceled {
		code = codes.Canceled
	}
	elapsed := time.Since(c.started)
	c.metrics.inFlight.Dec()
	c.g.metrics.observe(c.metrics, code, elapsed)
	if c.g.log.Enabled(levelInfo) {
		c.g.log.Log(levelInfo, "maas.access", c.requestID, "rpc", "method", c.method, "code", codeName(code),
			"ms", float64(elapsed.Microseconds())/1000)
	}
}

// guard runs a handler; a panic in it is logged with its stack and answered INTERNAL with a generic message (the
// runtime's rule for anything unexpected), and the gateway goes on serving.
func (c *call) guard(handler func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			c.g.log.Log(levelError, "maas.access", c.requestID, "unhandled error", "method", c.method,
				"error", fmt.Sprint(p), "exc", string(debug.Stack()))
			err = status.Errorf(codes.Internal, "internal error; quote request id %s when reporting it", c.requestID)
		}
	}()
	return handler()
}

// admit counts the call (GATEWAY_MAX_CONCURRENT_RPCS, and the drain waits for it); release when it ends.
func (g *Gateway) admit() bool {
	n := atomic.AddInt64(&g.running, 1)
	if g.settings.MaxConcurrentRPCs != 0 && n > int64(g.settings.MaxConcurrentRPCs) {
		atomic.AddInt64(&g.running, -1)
		return false
	}
	return true
}

func (g *Gateway) release() { atomic.AddInt64(&g.running, -1) }

// errTooMany: the calls in flight are at GATEWAY_MAX_CONCURRENT_RPCS; one ends soon, so a retry can succeed.
var errTooMany error = overloaded("the gateway is at its limit of concurrent calls (GATEWAY_MAX_CONCURRENT_RPCS)",
	100*time.Millisecond)

// authorize a call that is not a health check, when API keys are on.
func (g *Gateway) authorize(c *call) error {
	if g.keys == nil || strings.HasPrefix(c.method, healthPrefix) {
		return nil
	}
	if r := g.keys.Admit(c.incoming, c.method); r != nil {
		return c.reject(r)
	}
	return nil
}

// streamInterceptor: every streaming RPC, and every call the router forwards (grpc-go hands those to the
// unknown-service handler as streams). A method the router does not know is UNIMPLEMENTED before anything else,
// as a server answers a method it does not have.
func (g *Gateway) streamInterceptor(srv interface{}, ss grpc.ServerStream, info *grpc.StreamServerInfo,
	handler grpc.StreamHandler) error {
	var r route
	service, _, _ := strings.Cut(strings.TrimPrefix(info.FullMethod, "/"), "/")
	own := service == healthService || service == reflectionService
	if !own {
		if r = g.table().Resolve(info.FullMethod); r.kind == routeNone {
			return unimplemented(info.FullMethod)
		}
	}
	c := g.begin(ss.Context(), info.FullMethod)
	c.setTrailerFn = func(md metadata.MD) error { ss.SetTrailer(md); return nil }
	if strings.HasPrefix(info.FullMethod, healthPrefix) { // Watch: needs no key, so it has a budget of its own
		err := g.watch(func() error { return handler(srv, &serverStream{ServerStream: ss, call: c, route: r}) }, c)
		c.finish(err)
		return err
	}
	err := errTooMany
	if g.admit() {
		if err = g.authorize(c); err == nil {
			err = c.guard(func() error { return handler(srv, &serverStream{ServerStream: ss, call: c, route: r}) })
		}
		g.release()
	}
	c.finish(err)
	return err
}

// watch runs a health Watch stream within GATEWAY_MAX_HEALTH_WATCHES, outside GATEWAY_MAX_CONCURRENT_RPCS: watches
// need no API key, and must not use up the calls that keyed callers may make (nor hold up a drain).
func (g *Gateway) watch(handler func() error, c *call) error {
	n := atomic.AddInt64(&g.watches, 1)
	defer atomic.AddInt64(&g.watches, -1)
	if n > int64(g.settings.MaxHealthWatches) {
		return overloaded(fmt.Sprintf("%d health watches are open, the most this gateway keeps (use Check)",
			g.settings.MaxHealthWatches), time.Second)
	}
	return c.guard(handler)
}

// unaryInterceptor: the gateway's own unary calls (health Check).
func (g *Gateway) unaryInterceptor(ctx context.Context, req interface{}, info *grpc.UnaryServerInfo,
	handler grpc.UnaryHandler) (interface{}, error) {
	c := g.begin(ctx, info.FullMethod)
	c.setTrailerFn = func(md metadata.MD) error { return grpc.SetTrailer(ctx, md) }
	var reply interface{}
	err := errTooMany
	if g.admit() {
		if err = g.authorize(c); err == nil {
			err = c.guard(func() (herr error) { reply, herr = handler(ctx, req); return herr })
		}
		g.release()
	}
	c.finish(err)
	return reply, err
}

// unknownService: the handler of every method that is not the gateway's own.
func (g *Gateway) unknownService(_ interface{}, ss grpc.ServerStream) error {
	s, ok := ss.(*serverStream)
	if !ok { // not through the interceptor: cannot happen, the server always has it
		return status.Error(codes.Internal, "internal error")
	}
	return g.serve(s.call, s.route, ss)
}
