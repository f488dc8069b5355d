package main

// Which upstream answers a call: typed services by service name, KServe v2 by model name.
//
//   - /<package.Service>/<Method> goes to the upstream whose reflection listed the service (or whose
//     GATEWAY_<NAME>_SERVICES names it). An unknown service or method is UNIMPLEMENTED (UNAVAILABLE instead while
//     an upstream has not been asked yet: the service may be behind it).
//   - inference.GRPCInferenceService (the Open Inference Protocol, which every model server of the suite speaks
//     for its models): ModelInfer, ModelMetadata and ModelReady go to the upstream that serves the model. Only the
//     model name is read from the request (field 1 of all three, read off the wire); the owner of a name is found
//     by asking each KServe upstream's ModelMetadata once, then remembered. An unknown model is NOT_FOUND.
//     ServerLive, ServerReady and ServerMetadata describe the gateway and are answered here.

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
)

const (
	lookupTimeout = 2 * time.Second
	negativeTTL   = time.Second // an unknown model name is not asked about again for this long
	maxNegative   = 4096
)

type routeKind int

const (
	routeNone        routeKind = iota // UNIMPLEMENTED
	routeForward                      // to upstream, as it comes
	routeByModel                      // KServe: to the upstream serving the model named in field 1
	routeUnavailable                  // not known yet: an upstream has not said what it serves
	routeServerLive
	routeServerReady
	routeServerMetadata
)

type route struct {
	kind     routeKind
	upstream *Upstream
	shape    Shape  // routeForward
	field    string // routeByModel: the name of field 1 (for the error message)
}

// Table is one immutable snapshot of the routes; a discovery that changes anything builds the next one.
type Table struct {
	routes       map[string]*routed
	kserve       []*Upstream
	undiscovered []*Upstream
	names        []string // routed service names, sorted (KServe's included when an upstream serves it)
}

type routed struct {
	upstream *Upstream
	methods  map[string]Shape // nil: not described (no reflection): any method is forwarded
}

// BuildTable from what the upstreams said (they are in name order: the first one wins a service two serve).
func BuildTable(upstreams []*Upstream, log *Logger) *Table {
	t := &Table{routes: map[string]*routed{}}
	for _, u := range upstreams {
		if u.discovery == nil {
			t.undiscovered = append(t.undiscovered, u)
			continue
		}
		names := make([]string, 0, len(u.discovery.Services))
		for name := range u.discovery.Services {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			switch {
			case name == kserveService:
				t.kserve = append(t.kserve, u)
			case t.routes[name] != nil:
				log.Warn("maas.gateway.router", "service served by two upstreams; the first wins", "service", name,
					"first", t.routes[name].upstream.Name, "second", u.Name)
			default:
				t.routes[name] = &routed{upstream: u, methods: u.discovery.Services[name]}
			}
		}
	}
	for name := range t.routes {
		t.names = append(t.names, name)
	}
	if len(t.kserve) > 0 {
		t.names = append(t.names, kserveService)
	}
	sort.Strings(t.names)
	return t
}

// UpstreamsOf a routed service (every KServe upstream for KServe).
func (t *Table) UpstreamsOf(service string) []*Upstream {
	if service == kserveService {
		return t.kserve
	}
	if r := t.routes[service]; r != nil {
		return []*Upstream{r.upstream}
	}
	return nil
}

// Resolve a full method name (/pkg.Service/Method).
func (t *Table) Resolve(method string) route {
	service, name, ok := strings.Cut(strings.TrimPrefix(method, "/"), "/")
	if !ok || ownServices[service] { // e.g. reflection v1, which grpcurl tries before v1alpha
		return route{}
	}
	if service == kserveService && len(t.kserve) > 0 {
		switch name {
		case "ServerLive":
			return route{kind: routeServerLive}
		case "ServerReady":
			return route{kind: routeServerReady}
		case "ServerMetadata":
			return route{kind: routeServerMetadata}
		}
		if field, ok := byModel[name]; ok {
			return route{kind: routeByModel, field: field}
		}
		return route{}
	}
	r := t.routes[service]
	if r == nil {
		if len(t.undiscovered) > 0 {
			return route{kind: routeUnavailable}
		}
		return route{}
	}
	shape := bidi
	if r.methods != nil {
		if shape, ok = r.methods[name]; !ok {
			return route{}
		}
	}
	return route{kind: routeForward, upstream: r.upstream, shape: shape}
}

// Models: model name -> the KServe upstream serving it, learnt on first use and remembered.
type Models struct {
	mu      sync.Mutex
	owner   map[string]*Upstream
	missing map[string]time.Time
	pending map[string]*lookup
	kserve  func() []*Upstream
	log     *Logger
}

type lookup struct {
	done     chan struct{}
	upstream *Upstream
	err      *Rejection
}

func NewModels(kserve func() []*Upstream, log *Logger) *Models {
	return &Models{owner: map[string]*Upstream{}, missing: map[string]time.Time{}, pending: map[string]*lookup{},
		kserve: kserve, log: log}
}

// Owner of model: one lookup per name however many callers wait for it.
func (m *Models) Owner(ctx context.Context, name string) (*Upstream, *Rejection) {
	m.mu.Lock()
	if u := m.owner[name]; u != nil {
		m.mu.Unlock()
		return u, nil
	}
	if until, ok := m.missing[name]; ok && time.Now().Before(until) {
		m.mu.Unlock()
		return nil, notServed(name)
	}
	l := m.pending[name]
	if l == nil {
		l = &lookup{done: make(chan struct{})}
		m.pending[name] = l
		go m.lookup(name, l) // not the caller's: a caller that goes away does not cancel it for the others
	}
	m.mu.Unlock()
	select {
	case <-l.done:
		return l.upstream, l.err
	case <-ctx.Done():
		return nil, reject(codes.Canceled, "the call ended while its model was looked up")
	}
}

func (m *Models) lookup(name string, l *lookup) {
	defer close(l.done)
	candidates := m.kserve()
	answers := make([]bool, len(candidates))
	errs := make([]error, len(candidates))
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	var wg sync.WaitGroup
	for i, u := range candidates {
		wg.Add(1)
		go func(i int, u *Upstream) {
			defer wg.Done()
			answers[i], errs[i] = u.HasModel(ctx, name)
		}(i, u)
	}
	wg.Wait()
	cancel()
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.pending, name)
	var down []string
	for i, u := range candidates {
		if answers[i] {
			m.owner[name] = u
			l.upstream = u
			m.log.Info("maas.gateway.router", "model routed", "model", name, "upstream", u.Name)
			return
		}
		if errs[i] != nil {
			down = append(down, u.Name)
		}
	}
	if len(down) > 0 {
		l.err = reject(codes.Unavailable, "cannot tell which service serves model "+quote(name)+": "+
			strings.Join(down, ", ")+" unreachable; retry later")
		return
	}
	if len(m.missing) >= maxNegative {
		m.missing = map[string]time.Time{}
	}
	m.missing[name] = time.Now().Add(negativeTTL)
	l.err = notServed(name)
}

// Forget an owner that answered NOT_FOUND (the model moved or was removed): asked again next time.
func (m *Models) Forget(name string) {
	m.mu.Lock()
	delete(m.owner, name)
	m.mu.Unlock()
}

// Clear everything learnt (the set of KServe upstreams changed).
func (m *Models) Clear() {
	m.mu.Lock()
	m.owner = map[string]*Upstream{}
	m.missing = map[string]time.Time{}
	m.mu.Unlock()
}

func notServed(name string) *Rejection {
	return reject(codes.NotFound, "model "+quote(name)+" is not served by any service behind this gateway")
}
