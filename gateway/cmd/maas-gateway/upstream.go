package main

// One upstream: its channel, what it serves (discovered through its server reflection), its health, and the model
// lookups of KServe routing.
//
// The channel balances round robin over every address of the target (dns:///name:port gives one per replica, as a
// Kubernetes headless Service does; a list gives a fixed set) and, with client-side health checking, skips replicas
// whose grpc.health.v1 says NOT_SERVING (loading, draining). A short reconnect backoff makes a restarted upstream
// usable again within GATEWAY_RECONNECT_BACKOFF_MAX_S; a call while no replica is connected fails at once with
// UNAVAILABLE (no wait-for-ready).

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	_ "google.golang.org/grpc/health" // client-side health checking (healthCheckConfig)
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// Fixed HTTP/2 flow-control windows, on both sides of the gateway. grpc-go sizes them itself otherwise (BDP
// estimation), with a PING for most messages it receives: a frame to read and answer for the services and the
// callers on every call. A window is what a peer may send before the reader catches up: 4 MiB a call, 16 MiB a
// connection (messages are up to GATEWAY_MAX_MESSAGE_BYTES, 16 MiB by default).
const (
	streamWindow = 4 << 20
	connWindow   = 16 << 20
)

const (
	healthService       = "grpc.health.v1.Health"
	reflectionService   = "grpc.reflection.v1alpha.ServerReflection"
	reflectionServiceV1 = "grpc.reflection.v1.ServerReflection"
	warnEvery           = 5 * time.Second
)

// ownServices are served by the gateway itself, never routed to an upstream.
var ownServices = map[string]bool{healthService: true, reflectionService: true, reflectionServiceV1: true}

// Shape of a method: whether the client and the server stream.
type Shape struct {
	ClientStreams, ServerStreams bool
}

// Discovery is what an upstream serves: service -> method -> shape (nil: methods unknown, forward any as a
// bidirectional stream), and the proto files that describe them (serialized, as the upstream sent them).
type Discovery struct {
	Services map[string]map[string]Shape
	Files    []*descriptorpb.FileDescriptorProto
	Raw      map[string][]byte // file name -> serialized FileDescriptorProto
}

type Upstream struct {
	Name   string
	Target string
	conn   *grpc.ClientConn
	raw    []grpc.CallOption // frames through, never decoded
	config UpstreamConfig
	log    *Logger

	discovery    *Discovery // guarded by the Monitor's lock; nil until the first successful discovery
	discoveredAt time.Time
	lastWarning  int64 // unix nanoseconds, atomic
}

// ServiceConfig of every upstream channel: round robin, and client-side health checking unless turned off.
func ServiceConfig(s *Settings) string {
	roundRobin := map[string]interface{}{"round_robin": map[string]interface{}{}}
	config := map[string]interface{}{"loadBalancingConfig": []interface{}{roundRobin}}
	if s.UpstreamHealthCheck {
		config["healthCheckConfig"] = map[string]string{"serviceName": ""}
	}
	data, _ := json.Marshal(config)
	return string(data)
}

// ConnectParams: reconnect quickly (first retry after 0.2 s, never more than GATEWAY_RECONNECT_BACKOFF_MAX_S apart),
// and give up a connection attempt after 1 s at least (the backoff when it is longer).
func ConnectParams(s *Settings) grpc.ConnectParams {
	base := 200 * time.Millisecond
	if base > s.ReconnectBackoffMax {
		base = s.ReconnectBackoffMax
	}
	return grpc.ConnectParams{
		Backoff:           backoff.Config{BaseDelay: base, Multiplier: 1.6, Jitter: 0.2, MaxDelay: s.ReconnectBackoffMax},
		MinConnectTimeout: time.Second,
	}
}

// certPool reads the PEM certificates of path (the setting <envPrefix><variable>) into a pool.
func certPool(path, variable string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s%s=%s: no PEM certificate in it", envPrefix, variable, path)
	}
	return pool, nil
}

// UpstreamCredentials: TLS (mutual with a client certificate) to the upstreams, or nil for plaintext.
func UpstreamCredentials(s *Settings) (credentials.TransportCredentials, error) {
	if !s.UpstreamTLS {
		return nil, nil
	}
	config := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.UpstreamServerName}
	if s.UpstreamCAFile != "" {
		var err error
		if config.RootCAs, err = certPool(s.UpstreamCAFile, "UPSTREAM_CA_FILE"); err != nil {
			return nil, err
		}
	}
	if s.UpstreamCertFile != "" {
		pair, err := tls.LoadX509KeyPair(s.UpstreamCertFile, s.UpstreamKeyFile)
		if err != nil {
			return nil, fmt.Errorf("%sUPSTREAM_CERT_FILE / %sUPSTREAM_KEY_FILE: %v", envPrefix, envPrefix, err)
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return credentials.NewTLS(config), nil
}

// NewUpstream makes the channel (it connects in the background).
func NewUpstream(config UpstreamConfig, s *Settings, creds credentials.TransportCredentials,
	log *Logger) (*Upstream, error) {
	opts := []grpc.DialOption{
		grpc.WithDefaultServiceConfig(ServiceConfig(s)),
		grpc.WithDisableServiceConfig(), // the one above, never one from DNS TXT records
		grpc.WithConnectParams(ConnectParams(s)),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(s.MaxMessageBytes), grpc.MaxCallSendMsgSize(s.MaxMessageBytes)),
		grpc.WithUserAgent("maas-gateway"),
		grpc.WithInitialWindowSize(streamWindow), grpc.WithInitialConnWindowSize(connWindow),
		grpc.WithNoProxy(), // upstreams are internal: never through an HTTP proxy
		// an upstream that vanished without closing is found out by its unanswered pings (the servers accept
		// pings every 5 s and more, idle connections included)
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: s.KeepaliveTime, Timeout: s.KeepaliveTimeout,
			PermitWithoutStream: true}),
	}
	if creds != nil {
		opts = append(opts, grpc.WithTransportCredentials(creds))
	} else {
		opts = append(opts, grpc.WithInsecure())
	}
	if s.UpstreamToken != "" { // on every call to the upstream: proxied ones, discovery, health, reflection
		opts = append(opts, grpc.WithPerRPCCredentials(internalToken(s.UpstreamToken)))
	}
	target := config.Dial
	if config.List != nil || strings.HasPrefix(config.Dial, "dns:") {
		b := &resolverBuilder{list: config.List, log: log, upstream: config.Name}
		if config.List == nil {
			rest := strings.TrimPrefix(config.Dial, "dns://")
			b.authority, b.endpoint, _ = strings.Cut(rest, "/")
		}
		endpoint := b.endpoint
		if config.List != nil {
			endpoint = config.List[0]
		}
		target = resolverScheme + ":///" + endpoint // the endpoint is the channel's authority (and TLS name)
		opts = append(opts, grpc.WithResolvers(b), grpc.WithContextDialer(dialRaw))
	}
	conn, err := grpc.Dial(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("upstream %s (%s): %v", config.Name, config.Target, err)
	}
	return &Upstream{Name: config.Name, Target: config.Target, conn: conn, config: config, log: log,
		raw: []grpc.CallOption{grpc.ForceCodec(newRawCodec())}}, nil
}

func (u *Upstream) Services() map[string]map[string]Shape {
	if u.discovery == nil {
		return nil
	}
	return u.discovery.Services
}

// Discover asks the upstream's reflection what it serves; an error when it cannot answer.
func (u *Upstream) Discover(ctx context.Context) (*Discovery, error) {
	found, err := u.reflect(ctx)
	if err == nil {
		return found, nil
	}
	code := status.Code(err)
	if len(u.config.Services) == 0 || (code != codes.Unimplemented && code != codes.NotFound) {
		return nil, err
	}
	// services configured and no reflection: forward their methods without knowing their shapes
	d := &Discovery{Services: map[string]map[string]Shape{}}
	for _, name := range u.config.Services {
		d.Services[name] = nil
	}
	return d, nil
}

func (u *Upstream) reflect(ctx context.Context) (*Discovery, error) {
	stream, err := rpb.NewServerReflectionClient(u.conn).ServerReflectionInfo(ctx)
	if err != nil {
		return nil, err
	}
	defer stream.CloseSend() //nolint:errcheck
	names := u.config.Services
	if len(names) == 0 {
		req := &rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}}
		if err := stream.Send(req); err != nil {
			return nil, recvErr(stream, err)
		}
		reply, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		for _, s := range reply.GetListServicesResponse().GetService() {
			if !ownServices[s.Name] {
				names = append(names, s.Name)
			}
		}
		sort.Strings(names)
	}
	for _, name := range names {
		req := &rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{
			FileContainingSymbol: name}}
		if err := stream.Send(req); err != nil {
			return nil, recvErr(stream, err)
		}
	}
	d := &Discovery{Services: map[string]map[string]Shape{}, Raw: map[string][]byte{}}
	for range names {
		reply, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		for _, blob := range reply.GetFileDescriptorResponse().GetFileDescriptorProto() {
			fdp := &descriptorpb.FileDescriptorProto{}
			if err := proto.Unmarshal(blob, fdp); err != nil {
				return nil, status.Errorf(codes.Internal, "a file descriptor from %s does not parse: %v", u.Name, err)
			}
			if _, seen := d.Raw[fdp.GetName()]; !seen {
				d.Raw[fdp.GetName()] = blob
				d.Files = append(d.Files, fdp)
			}
		}
	}
	shapes := serviceShapes(d.Files)
	for _, name := range names {
		d.Services[name] = shapes[name] // nil when the upstream could not describe it
	}
	return d, nil
}

// recvErr: a Send that failed because the stream ended; Recv tells why.
func recvErr(stream rpb.ServerReflection_ServerReflectionInfoClient, err error) error {
	if err == io.EOF {
		if _, rerr := stream.Recv(); rerr != nil {
			return rerr
		}
	}
	return err
}

// serviceShapes: service full name -> method -> shape, for every service the files define.
func serviceShapes(files []*descriptorpb.FileDescriptorProto) map[string]map[string]Shape {
	out := map[string]map[string]Shape{}
	for _, f := range files {
		for _, svc := range f.GetService() {
			name := svc.GetName()
			if f.GetPackage() != "" {
				name = f.GetPackage() + "." + name
			}
			methods := map[string]Shape{}
			for _, m := range svc.GetMethod() {
				methods[m.GetName()] = Shape{m.GetClientStreaming(), m.GetServerStreaming()}
			}
			out[name] = methods
		}
	}
	return out
}

// Check is the upstream's grpc.health.v1 status for service (its overall one when it has none for that name);
// NOT_SERVING when it cannot be asked. A server without the health service counts as SERVING.
func (u *Upstream) Check(ctx context.Context, service string,
	timeout time.Duration) healthpb.HealthCheckResponse_ServingStatus {
	client := healthpb.NewHealthClient(u.conn)
	for _, name := range []string{service, ""} {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		reply, err := client.Check(cctx, &healthpb.HealthCheckRequest{Service: name})
		cancel()
		if err == nil {
			return reply.Status
		}
		switch status.Code(err) {
		case codes.NotFound:
			if name != "" {
				continue
			}
		case codes.Unimplemented:
			return healthpb.HealthCheckResponse_SERVING
		}
		return healthpb.HealthCheckResponse_NOT_SERVING
	}
	return healthpb.HealthCheckResponse_NOT_SERVING
}

// HasModel: whether this upstream serves model over KServe v2 (its ModelMetadata answers, or says NOT_FOUND); an
// error when it cannot tell.
func (u *Upstream) HasModel(ctx context.Context, model string) (bool, error) {
	err := u.conn.Invoke(ctx, "/"+kserveService+"/ModelMetadata", &frame{payload: modelMetadataRequest(model)},
		&frame{}, u.raw...)
	if status.Code(err) == codes.NotFound {
		return false, nil
	}
	return err == nil, err
}

// WarnUnreachable logs why calls fail, at most every few seconds (a down upstream fails every call at once).
func (u *Upstream) WarnUnreachable(details string) {
	now := time.Now().UnixNano()
	last := atomic.LoadInt64(&u.lastWarning)
	if now-last > int64(warnEvery) && atomic.CompareAndSwapInt64(&u.lastWarning, last, now) {
		u.log.Warn("maas.gateway.upstream", "upstream unreachable", "upstream", u.Name, "target", u.Target,
			"details", details)
	}
}

func (u *Upstream) Close() { u.conn.Close() }

// awaitReady waits, at most wait and never past ctx's deadline, for the channel to have a connected replica: a call
// made while the upstream restarts then goes through once it is back, instead of failing at once. Nothing of the
// call has been sent yet, so this is safe for every method; an upstream that stays down still answers UNAVAILABLE.
func (u *Upstream) awaitReady(ctx context.Context, wait time.Duration) {
	if wait <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		state := u.conn.GetState()
		if state == connectivity.Ready || state == connectivity.Shutdown || !u.conn.WaitForStateChange(ctx, state) {
			return
		}
	}
}

// internalTokenKey: the metadata that carries the suite's shared secret between hops (maas_runtime.interceptors).
const internalTokenKey = "x-maas-internal-token"

// internalToken adds the token to each call; it may travel without TLS (loopback, a mesh that encrypts).
type internalToken string

func (t internalToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{internalTokenKey: string(t)}, nil
}

func (t internalToken) RequireTransportSecurity() bool { return false }
