package main

// Prometheus metrics, with the names every server of the suite exports (libs/runtime/maas_runtime/metrics.py) and
// the gateway's own: per-method latency and calls in flight, each upstream's health per service, routed services.

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/codes"
)

var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

type Metrics struct {
	registry        *prometheus.Registry
	latency         *prometheus.HistogramVec
	inFlight        *prometheus.GaugeVec
	upstreamServing *prometheus.GaugeVec
	routed          prometheus.Gauge
	methods         sync.Map // method -> *methodMetrics
}

// methodMetrics: one method's series, looked up once (WithLabelValues hashes its labels on every call).
type methodMetrics struct {
	inFlight prometheus.Gauge
	byCode   [17]atomic.Value // codes.Code -> prometheus.Observer, made on first use
	method   string
}

func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "maas_rpc_latency_seconds", Help: "RPC latency", Buckets: latencyBuckets}, []string{"method", "code"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "maas_rpc_in_flight", Help: "RPCs being served"}, []string{"method"}),
		upstreamServing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "maas_gateway_upstream_serving", Help: "1 while the upstream reports SERVING for the service"},
			[]string{"upstream", "service"}),
		routed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "maas_gateway_routed_services", Help: "gRPC services the gateway routes"}),
	}
	m.registry.MustRegister(m.latency, m.inFlight, m.upstreamServing, m.routed,
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	return m
}

func (m *Metrics) method(name string) *methodMetrics {
	if found, ok := m.methods.Load(name); ok {
		return found.(*methodMetrics)
	}
	mm := &methodMetrics{inFlight: m.inFlight.WithLabelValues(name), method: name}
	found, _ := m.methods.LoadOrStore(name, mm)
	return found.(*methodMetrics)
}

func (m *Metrics) observe(mm *methodMetrics, code codes.Code, elapsed time.Duration) {
	var obs prometheus.Observer
	if int(code) < len(mm.byCode) {
		if v := mm.byCode[code].Load(); v != nil {
			obs = v.(prometheus.Observer)
		} else {
			obs = m.latency.WithLabelValues(mm.method, codeName(code))
			mm.byCode[code].Store(obs)
		}
	} else {
		obs = m.latency.WithLabelValues(mm.method, codeName(code))
	}
	obs.Observe(elapsed.Seconds())
}

// Serve exposes /metrics on its own port; the listener is bound before it returns (an error names the address).
func (m *Metrics) Serve(address string) (net.Listener, error) {
	lis, err := net.Listen("tcp", address)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
	go http.Serve(lis, mux) //nolint:errcheck // ends with the process
	return lis, nil
}

// codeName is the status code as grpc-python names it (OK, INVALID_ARGUMENT, ...): the label the services use.
func codeName(c codes.Code) string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return c.String()
}

var codeNames = []string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
	"UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}
