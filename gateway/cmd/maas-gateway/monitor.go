package main

// Keeps the routing table and the gateway's health in step with the upstreams.
//
// Every GATEWAY_HEALTH_INTERVAL_S: an upstream never discovered (unreachable at start) is asked again, one that was
// discovered is asked again every rediscoverEvery (a redeployed upstream may serve new methods), and each routed
// service's health is read from its upstream (grpc.health.v1 Check, through the balanced channel: SERVING when a
// replica serves it). The gateway's own health then has one entry per routed service: SERVING while every upstream
// routing it does, NOT_SERVING otherwise. Its overall status ("") is the gateway's: SERVING once the first
// discovery round is over, whatever the upstreams say (a gateway with one service down still routes the others;
// its per-service entries tell which is down).

import (
	"context"
	"reflect"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

const (
	rediscoverEvery = 30 * time.Second
	checkTimeout    = 2 * time.Second
	retryDiscovery  = 500 * time.Millisecond
)

type statusKey struct{ upstream, service string }

type Monitor struct {
	g         *Gateway
	mu        sync.Mutex // the upstreams' discoveries, rebuilds, and the maps below
	status    map[statusKey]healthpb.HealthCheckResponse_ServingStatus
	published map[string]healthpb.HealthCheckResponse_ServingStatus
}

func NewMonitor(g *Gateway) *Monitor {
	return &Monitor{g: g, status: map[statusKey]healthpb.HealthCheckResponse_ServingStatus{},
		published: map[string]healthpb.HealthCheckResponse_ServingStatus{}}
}

// UpstreamStatus is the last status upstream reported for service (NOT_SERVING before it was asked).
func (m *Monitor) UpstreamStatus(u *Upstream, service string) healthpb.HealthCheckResponse_ServingStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.status[statusKey{u.Name, service}]; ok {
		return s
	}
	return healthpb.HealthCheckResponse_NOT_SERVING
}

// discover asks u what it serves and rebuilds the routes when the answer changed; false: no answer.
func (m *Monitor) discover(ctx context.Context, u *Upstream, timeout time.Duration) bool {
	dctx, cancel := context.WithTimeout(ctx, timeout)
	found, err := u.Discover(dctx)
	cancel()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		if u.discovery == nil && ctx.Err() == nil {
			st, _ := status.FromError(err)
			m.g.log.Warn("maas.gateway.monitor", "upstream not discovered yet", "upstream", u.Name, "target", u.Target,
				"code", codeName(st.Code()), "details", st.Message())
		}
		return false
	}
	u.discoveredAt = time.Now()
	if u.discovery == nil || !reflect.DeepEqual(found.Services, u.discovery.Services) {
		u.discovery = found
		names := make([]string, 0, len(found.Services))
		for name := range found.Services {
			names = append(names, name)
		}
		sort.Strings(names)
		m.g.log.Info("maas.gateway.monitor", "upstream discovered", "upstream", u.Name, "target", u.Target,
			"services", names)
		m.g.rebuild()
	}
	return true
}

// DiscoverAll is the first round: every upstream, asked again until it answers or timeout is spent.
func (m *Monitor) DiscoverAll(ctx context.Context, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	var wg sync.WaitGroup
	for _, u := range m.g.upstreams {
		wg.Add(1)
		go func(u *Upstream) {
			defer wg.Done()
			for {
				left := time.Until(deadline)
				if left <= 0 || ctx.Err() != nil {
					return
				}
				if left > checkTimeout {
					left = checkTimeout
				}
				if m.discover(ctx, u, left) {
					return
				}
				wait := time.Until(deadline)
				if wait > retryDiscovery {
					wait = retryDiscovery
				}
				if wait > 0 && !sleep(ctx, wait) {
					return
				}
			}
		}(u)
	}
	wg.Wait()
	var missing []string
	for _, u := range m.g.table().undiscovered {
		missing = append(missing, u.Name)
	}
	if len(missing) > 0 {
		m.g.log.Warn("maas.gateway.monitor", "starting without these upstreams; asking again every health interval",
			"upstreams", missing)
	}
}

// Poll is one round: rediscover where due, read every routed service's health, publish the changes.
func (m *Monitor) Poll(ctx context.Context) {
	var wg sync.WaitGroup
	m.mu.Lock()
	var due []*Upstream
	for _, u := range m.g.upstreams {
		if u.discovery == nil || time.Since(u.discoveredAt) > rediscoverEvery {
			due = append(due, u)
		}
	}
	m.mu.Unlock()
	for _, u := range due {
		wg.Add(1)
		go func(u *Upstream) { defer wg.Done(); m.discover(ctx, u, checkTimeout) }(u)
	}
	wg.Wait()

	m.mu.Lock()
	var checks []statusKey
	byName := map[string]*Upstream{}
	for _, u := range m.g.upstreams {
		byName[u.Name] = u
		for service := range u.Services() {
			checks = append(checks, statusKey{u.Name, service})
		}
	}
	m.mu.Unlock()
	results := make([]healthpb.HealthCheckResponse_ServingStatus, len(checks))
	for i, k := range checks {
		wg.Add(1)
		go func(i int, k statusKey) {
			defer wg.Done()
			results[i] = byName[k.upstream].Check(ctx, k.service, checkTimeout)
		}(i, k)
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	for i, k := range checks {
		if old, ok := m.status[k]; !ok || old != results[i] {
			m.g.log.Info("maas.gateway.monitor", "upstream health", "upstream", k.upstream, "service", k.service,
				"status", results[i].String())
		}
		m.status[k] = results[i]
		serving := 0.0
		if results[i] == healthpb.HealthCheckResponse_SERVING {
			serving = 1
		}
		m.g.metrics.upstreamServing.WithLabelValues(k.upstream, k.service).Set(serving)
	}
	t := m.g.table()
	m.g.metrics.routed.Set(float64(len(t.names)))
	routed := map[string]bool{}
	for _, name := range t.names {
		routed[name] = true
	}
	for name := range m.published {
		if !routed[name] { // no longer routed (an upstream stopped serving it)
			delete(m.published, name)
			m.g.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVICE_UNKNOWN)
		}
	}
	for _, name := range t.names {
		st := healthpb.HealthCheckResponse_SERVING
		ups := t.UpstreamsOf(name)
		if len(ups) == 0 {
			st = healthpb.HealthCheckResponse_NOT_SERVING
		}
		for _, u := range ups {
			if s, ok := m.status[statusKey{u.Name, name}]; !ok || s != healthpb.HealthCheckResponse_SERVING {
				st = healthpb.HealthCheckResponse_NOT_SERVING
			}
		}
		if old, ok := m.published[name]; !ok || old != st {
			m.published[name] = st
			m.g.health.SetServingStatus(name, st)
		}
	}
}

// Run polls every interval until ctx ends.
func (m *Monitor) Run(ctx context.Context, interval time.Duration) {
	for sleep(ctx, interval) {
		m.pollSafely(ctx)
	}
}

func (m *Monitor) pollSafely(ctx context.Context) {
	defer func() {
		if p := recover(); p != nil { // the loop must outlive any one bad round
			m.g.log.Error("maas.gateway.monitor", "health round failed", "panic", status.Errorf(codes.Internal, "%v", p))
		}
	}()
	m.Poll(ctx)
}
