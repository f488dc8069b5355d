package main

// Name resolution for the upstreams' channels: every address of a DNS name (dns:///nlp-analysis:50052, a
// Kubernetes headless Service: one per ready pod) or a fixed list of addresses, balanced round robin by the
// channel. grpc-go's own dns resolver waits 30 s between lookups, too long for a replaced pod's new address; this
// one looks again at most every 2 s when the channel asks (a connection lost or aged out) and every 30 s anyway.

import (
	"context"
	"net"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc/resolver"
)

const (
	resolverScheme       = "maas"
	dnsMinInterval       = 2 * time.Second
	dnsRefresh           = 30 * time.Second
	dnsLookupTimeout     = 10 * time.Second
	defaultDNSServerPort = "53"
)

// resolverBuilder resolves one upstream (it is given to that upstream's channel only, with grpc.WithResolvers).
type resolverBuilder struct {
	list      []string // a fixed list of host:port; else DNS:
	authority string   // DNS server to ask ("": the system's)
	endpoint  string   // host:port to look up
	log       *Logger
	upstream  string
}

func (b *resolverBuilder) Scheme() string { return resolverScheme }

func (b *resolverBuilder) Build(_ resolver.Target, cc resolver.ClientConn,
	_ resolver.BuildOptions) (resolver.Resolver, error) {
	if b.list != nil {
		cc.UpdateState(resolver.State{Addresses: addresses(b.list)})
		return nopResolver{}, nil
	}
	host, port, err := splitHostPort(b.endpoint, true)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip != nil {
		cc.UpdateState(resolver.State{Addresses: addresses([]string{net.JoinHostPort(ip.String(), port)})})
		return nopResolver{}, nil
	}
	lookup := net.DefaultResolver
	if b.authority != "" {
		server := b.authority
		if _, _, err := net.SplitHostPort(server); err != nil {
			server = net.JoinHostPort(server, defaultDNSServerPort)
		}
		lookup = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		}}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &dnsResolver{b: b, host: host, port: port, cc: cc, lookup: lookup, ctx: ctx, cancel: cancel,
		now: make(chan struct{}, 1)}
	r.wg.Add(1)
	go r.watch()
	return r, nil
}

type nopResolver struct{}

func (nopResolver) ResolveNow(resolver.ResolveNowOptions) {}
func (nopResolver) Close()                                {}

type dnsResolver struct {
	b          *resolverBuilder
	host, port string
	cc         resolver.ClientConn
	lookup     *net.Resolver
	ctx        context.Context
	cancel     context.CancelFunc
	now        chan struct{}
	wg         sync.WaitGroup
	last       []string
}

func (r *dnsResolver) ResolveNow(resolver.ResolveNowOptions) {
	select {
	case r.now <- struct{}{}:
	default:
	}
}

func (r *dnsResolver) Close() {
	r.cancel()
	r.wg.Wait()
}

func (r *dnsResolver) watch() {
	defer r.wg.Done()
	for {
		r.resolve()
		if !sleep(r.ctx, dnsMinInterval) {
			return
		}
		refresh := time.NewTimer(dnsRefresh - dnsMinInterval)
		select {
		case <-r.ctx.Done():
			refresh.Stop()
			return
		case <-r.now:
		case <-refresh.C:
		}
		refresh.Stop()
	}
}

func (r *dnsResolver) resolve() {
	ctx, cancel := context.WithTimeout(r.ctx, dnsLookupTimeout)
	defer cancel()
	ips, err := r.lookup.LookupHost(ctx, r.host)
	if err != nil {
		if r.ctx.Err() == nil {
			r.b.log.Warn("maas.gateway.upstream", "name not resolved", "upstream", r.b.upstream, "host", r.host,
				"error", err)
			r.cc.ReportError(err)
		}
		return
	}
	found := make([]string, 0, len(ips))
	for _, ip := range ips {
		found = append(found, net.JoinHostPort(ip, r.port))
	}
	sort.Strings(found)
	if equal(found, r.last) {
		return
	}
	r.last = found
	r.cc.UpdateState(resolver.State{Addresses: addresses(found)})
}

func addresses(list []string) []resolver.Address {
	out := make([]resolver.Address, len(list))
	for i, a := range list {
		out[i] = resolver.Address{Addr: a}
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// sleep for d unless ctx ends first (false then).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
