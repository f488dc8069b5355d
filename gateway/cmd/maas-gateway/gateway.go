package main

// The gateway: settings, upstream channels, router, health, reflection and metrics behind one gRPC port; bind
// first (NOT_SERVING while discovering), serve until SIGTERM, drain, stop.

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
)

// version: what ServerMetadata says.
const version = "1"

type Gateway struct {
	settings   *Settings
	log        *Logger
	upstreams  []*Upstream  // in name order
	routes     atomic.Value // *Table
	models     *Models
	monitor    *Monitor
	health     *health.Server
	reflection *Reflection
	keys       *Keyring // nil: no API keys
	metrics    *Metrics
	server     *grpc.Server
	running    int64  // calls in progress (GATEWAY_MAX_CONCURRENT_RPCS, the drain)
	watches    int64  // open health Watch streams (GATEWAY_MAX_HEALTH_WATCHES)
	kserve     string // the KServe upstreams of the last table, to tell when model owners must be asked again
}

func NewGateway(s *Settings, log *Logger) (*Gateway, error) {
	g := &Gateway{settings: s, log: log, health: health.NewServer(), metrics: NewMetrics()}
	g.routes.Store(&Table{routes: map[string]*routed{}})
	creds, err := UpstreamCredentials(s)
	if err != nil {
		return nil, err
	}
	for _, config := range s.Upstreams {
		u, err := NewUpstream(config, s, creds, log)
		if err != nil {
			return nil, err
		}
		g.upstreams = append(g.upstreams, u)
	}
	if len(g.upstreams) == 0 {
		log.Warn("maas.gateway", "no upstreams configured: set GATEWAY_<NAME>_ADDR for each service to route")
	}
	if len(s.APIKeys)+len(s.AdminAPIKeys) > 0 {
		g.keys = NewKeyring(s.APIKeys, s.AdminAPIKeys, s.AdminMethods, s.RateLimitPerS, s.RateLimitBurst)
	}
	g.models = NewModels(func() []*Upstream { return g.table().kserve }, log)
	g.monitor = NewMonitor(g)
	if g.reflection, err = NewReflection(func() []string { return g.table().names }); err != nil {
		return nil, err
	}
	g.routes.Store(BuildTable(g.upstreams, log))

	opts := []grpc.ServerOption{
		grpc.CustomCodec(newRawCodec()), //nolint:staticcheck // grpc-go 1.33 has no ForceServerCodec
		grpc.UnknownServiceHandler(g.unknownService),
		grpc.StreamInterceptor(g.streamInterceptor),
		grpc.UnaryInterceptor(g.unaryInterceptor),
		grpc.MaxRecvMsgSize(s.MaxMessageBytes),
		grpc.MaxSendMsgSize(s.MaxMessageBytes),
		grpc.InitialWindowSize(streamWindow), grpc.InitialConnWindowSize(connWindow), // see upstream.go
	}
	params := keepalive.ServerParameters{Time: s.KeepaliveTime, Timeout: s.KeepaliveTimeout}
	if s.MaxConnectionAge > 0 {
		params.MaxConnectionAge, params.MaxConnectionAgeGrace = s.MaxConnectionAge, s.MaxConnectionAgeGrace
	}
	// clients may ping as often as every 5 s, with no call open too (SDKs that keep their channel alive)
	opts = append(opts, grpc.KeepaliveParams(params),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}))
	if s.TLSCertFile != "" {
		edge, err := edgeCredentials(s)
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.Creds(edge))
	}
	g.server = grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(g.server, g.health)
	rpb.RegisterServerReflectionServer(g.server, g.reflection)
	return g, nil
}

// edgeCredentials: TLS at the listening port, mutual when a client CA is set.
func edgeCredentials(s *Settings) (credentials.TransportCredentials, error) {
	pair, err := tls.LoadX509KeyPair(s.TLSCertFile, s.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("%sTLS_CERT_FILE / %sTLS_KEY_FILE: %v", envPrefix, envPrefix, err)
	}
	config := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if s.TLSClientCAFile != "" {
		if config.ClientCAs, err = certPool(s.TLSClientCAFile, "TLS_CLIENT_CA_FILE"); err != nil {
			return nil, err
		}
		config.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return credentials.NewTLS(config), nil
}

func (g *Gateway) table() *Table { return g.routes.Load().(*Table) }

// rebuild the table from what the upstreams said (the Monitor holds its lock).
func (g *Gateway) rebuild() {
	t := BuildTable(g.upstreams, g.log)
	kserve := ""
	for _, u := range t.kserve {
		kserve += u.Name + ","
	}
	if kserve != g.kserve {
		g.models.Clear() // model owners are asked again among the new set
		g.kserve = kserve
	}
	for _, u := range g.upstreams {
		if u.discovery != nil {
			g.reflection.Add(u.discovery.Files, u.discovery.Raw)
		}
	}
	g.routes.Store(t)
	routes := map[string]string{}
	for name, r := range t.routes {
		routes[name] = r.upstream.Name
	}
	var kserveNames, undiscovered []string
	for _, u := range t.kserve {
		kserveNames = append(kserveNames, u.Name)
	}
	for _, u := range t.undiscovered {
		undiscovered = append(undiscovered, u.Name)
	}
	g.log.Info("maas.gateway.router", "routes", "routes", routes, "kserve", kserveNames, "undiscovered", undiscovered)
}

// kserveReady: ServerReady is true while every upstream serving KServe reports SERVING for it.
func (g *Gateway) kserveReady() bool {
	t := g.table()
	for _, u := range t.kserve {
		if g.monitor.UpstreamStatus(u, kserveService) != healthpb.HealthCheckResponse_SERVING {
			return false
		}
	}
	return len(t.kserve) > 0
}

// Run binds, discovers the upstreams (NOT_SERVING meanwhile), reports SERVING, serves until SIGTERM or SIGINT,
// then reports NOT_SERVING and stops, giving calls in flight GATEWAY_GRACE_SECONDS. The exit status.
func (g *Gateway) Run() int {
	s := g.settings
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	lis, err := net.Listen("tcp", net.JoinHostPort(s.Host, strconv.Itoa(s.Port)))
	if err != nil {
		g.log.Error("maas.server", "cannot bind", "address", net.JoinHostPort(s.Host, strconv.Itoa(s.Port)),
			"error", err)
		return 1
	}
	g.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	served := make(chan error, 1)
	go func() { served <- g.server.Serve(rawListener{lis}) }()
	var metricsPort interface{}
	if s.MetricsPort >= 0 {
		mlis, err := g.metrics.Serve(net.JoinHostPort(s.Host, strconv.Itoa(s.MetricsPort)))
		if err != nil {
			g.log.Error("maas.server", "cannot bind the metrics port", "error", err)
			g.server.Stop()
			return 1
		}
		metricsPort = mlis.Addr().(*net.TCPAddr).Port
	}
	tlsMode := "off"
	if s.TLSClientCAFile != "" {
		tlsMode = "mutual"
	} else if s.TLSCertFile != "" {
		tlsMode = "on"
	}
	g.log.Info("maas.server", "listening", "service", "gateway",
		"address", net.JoinHostPort(s.Host, strconv.Itoa(lis.Addr().(*net.TCPAddr).Port)), "tls", tlsMode,
		"services", []string{}, "metrics_port", metricsPort, "gomaxprocs", runtime.GOMAXPROCS(0))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopping := make(chan struct{})
	go func() {
		select {
		case <-signals:
			close(stopping)
			cancel() // a signal during discovery ends it
		case <-ctx.Done():
		}
	}()
	g.monitor.DiscoverAll(ctx, s.DiscoveryTimeout)
	g.monitor.Poll(ctx)
	if ctx.Err() == nil {
		g.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
		g.log.Info("maas.server", "serving", "service", "gateway", "models", map[string]string{})
		go g.monitor.Run(ctx, s.HealthInterval)
	}
	select {
	case <-stopping:
	case err := <-served:
		g.log.Error("maas.server", "server failed", "error", err)
		return 1
	}
	g.log.Info("maas.server", "signal received, draining", "grace_s", s.Grace.Seconds())
	g.health.Shutdown() // NOT_SERVING everywhere: balancers drain us
	// GOAWAY to every caller (no new calls), then the calls in flight get the grace to finish. GracefulStop alone
	// would also wait for the callers to close their connections, which some never do while their channel lives.
	done := make(chan struct{})
	go func() { g.server.GracefulStop(); close(done) }()
	deadline := time.Now().Add(s.Grace)
	for atomic.LoadInt64(&g.running) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	// a call's handler has returned, but its last frames (the answer, the status) may not be written yet: let
	// GracefulStop finish them (it returns once no stream is left), for a moment at most
	select {
	case <-done:
	case <-time.After(500 * time.Millisecond):
	}
	g.server.Stop() // closes the connections; ends what still runs
	<-done
	cancel()
	for _, u := range g.upstreams {
		u.Close()
	}
	g.log.Info("maas.server", "stopped", "service", "gateway")
	return 0
}
