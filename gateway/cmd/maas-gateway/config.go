package main

// Settings: environment variables prefixed GATEWAY_; the upstreams are GATEWAY_<NAME>_ADDR variables.
//
// One variable per upstream, so a new service is routed by adding one line of configuration (cluster.toml does it
// for the local cluster, docker-compose.yml and the Kubernetes manifests list them):
//
//	GATEWAY_NLP_ANALYSIS_ADDR=127.0.0.1:50052                  # one address (DNS name or IP) and port
//	GATEWAY_NLP_ANALYSIS_ADDR=dns:///nlp-analysis:50052        # every address DNS returns, round robin
//	GATEWAY_NLP_ANALYSIS_ADDR=10.0.0.5:50052,10.0.0.6:50052    # a fixed list of IP addresses, round robin
//	GATEWAY_NLP_ANALYSIS_SERVICES=maas.nlp.v1.NlpAnalysis      # optional: skip discovery (see upstream.go)
//
// The upstream's name is the middle part, lower case with dashes (nlp-analysis); it names the upstream in logs,
// metrics and error messages. The other settings are the runtime's ServerSettings (libs/runtime, the same names
// every server of the suite reads with its own prefix) and the gateway's own; names are case-insensitive and
// unknown GATEWAY_* variables are ignored, as pydantic-settings does for the Python services. A bad value is an
// error naming the variable; main prints every one of them and exits 2.

import (
	"fmt"
	"math"
	"net"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

const envPrefix = "GATEWAY_"

// UpstreamConfig is one upstream: a gRPC target (one or many replicas) and, optionally, the services it serves.
type UpstreamConfig struct {
	Name     string   // lower-case words joined by '-': nlp-analysis
	Target   string   // as configured (logs)
	Dial     string   // what grpc.Dial gets: dns://[authority]/host:port, unix:..., or the first of Addresses
	List     []string // a fixed list of host:port (ipv4:/ipv6: or a comma-separated list): a static resolver
	Services []string // empty: discovered through the upstream's server reflection
}

// Settings of the gateway. Durations and sizes are already in their Go types; optional ones are zero when off.
type Settings struct {
	Host              string
	Port              int
	MetricsPort       int // -1: no /metrics
	LogLevel          string
	LogFormat         string // json | text
	Grace             time.Duration
	MaxMessageBytes   int
	MaxConcurrentRPCs int // 0: no limit
	MaxHealthWatches  int // open grpc.health.v1 Watch streams (they need no key, and do not count above)
	TLSCertFile       string
	TLSKeyFile        string
	TLSClientCAFile   string
	MaxConnectionAge  time.Duration // 0: never
	// what the calls in flight on an aged connection get to finish (streams of generated text run for a while)
	MaxConnectionAgeGrace time.Duration
	// gRPC keepalive, on the edge and on the upstream channels: a connection idle this long is pinged and closed
	// when the ping goes unanswered for KeepaliveTimeout (a vanished peer gives back what its calls held).
	KeepaliveTime    time.Duration
	KeepaliveTimeout time.Duration

	Upstreams []UpstreamConfig // sorted by name

	// Optional API keys (off when empty): `authorization: Bearer <key>` or `x-api-key: <key>`. Per key, a token
	// bucket of RateLimitPerS calls a second (0: no limit) and RateLimitBurst banked calls.
	APIKeys        []string
	AdminAPIKeys   []string // keys that may also call AdminMethods
	AdminMethods   []string // full method names, e.g. /maas.music.v1.MusicRecommender/RetrainModel
	RateLimitPerS  float64
	RateLimitBurst int

	UpstreamTLS         bool
	UpstreamCAFile      string // empty with TLS on: the system's roots
	UpstreamCertFile    string // client certificate + key: mutual TLS
	UpstreamKeyFile     string
	UpstreamServerName  string        // expected name in the upstreams' certificates
	UpstreamHealthCheck bool          // skip replicas whose grpc.health.v1 says NOT_SERVING (client-side)
	UpstreamToken       string        // the suite's shared secret, added to every upstream call (x-maas-internal-token)
	UpstreamWait        time.Duration // a call waits this long for a replica to connect (a restart) before failing
	ReconnectBackoffMax time.Duration

	HealthInterval   time.Duration
	DiscoveryTimeout time.Duration
}

var (
	serviceNameRe  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$`)
	upstreamNameRe = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	upstreamVarRe  = regexp.MustCompile(`^` + envPrefix + `([A-Z][A-Z0-9_]*?)_(ADDR|SERVICES)$`)
	logLevels      = map[string]bool{"DEBUG": true, "INFO": true, "WARNING": true, "WARN": true, "ERROR": true,
		"CRITICAL": true}
)

// ConfigError lists every bad setting, one line each.
type ConfigError []string

func (e ConfigError) Error() string { return strings.Join(e, "\n") }

// env reads GATEWAY_* variables by upper-case name and collects the errors.
type env struct {
	vars map[string]string
	errs ConfigError
}

func (e *env) fail(name, value, format string, args ...interface{}) {
	e.errs = append(e.errs, fmt.Sprintf("%s%s=%s: %s", envPrefix, name, quote(value), fmt.Sprintf(format, args...)))
}

func (e *env) lookup(name string) (string, bool) {
	v, ok := e.vars[envPrefix+name]
	if ok && strings.TrimSpace(v) == "" {
		return "", false // empty counts as unset
	}
	return strings.TrimSpace(v), ok
}

func (e *env) str(name, def string) string {
	if v, ok := e.lookup(name); ok {
		return v
	}
	return def
}

// integer in [lo, hi]; def when unset.
func (e *env) integer(name string, def, lo, hi int) int {
	v, ok := e.lookup(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		e.fail(name, v, "not an integer")
		return def
	}
	if n < lo || n > hi {
		e.fail(name, v, "must be between %d and %d", lo, hi)
		return def
	}
	return n
}

// number > 0 (or >= 0 when zeroOK); def when unset.
func (e *env) number(name string, def float64, zeroOK bool) float64 {
	v, ok := e.lookup(name)
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		e.fail(name, v, "not a number")
		return def
	}
	if f < 0 || (f == 0 && !zeroOK) {
		if zeroOK {
			e.fail(name, v, "must be 0 or more")
		} else {
			e.fail(name, v, "must be more than 0")
		}
		return def
	}
	return f
}

func (e *env) seconds(name string, def float64, zeroOK bool) time.Duration {
	return time.Duration(e.number(name, def, zeroOK) * float64(time.Second))
}

// boolean as pydantic reads one: true/false, 1/0, yes/no, on/off, t/f, y/n.
func (e *env) boolean(name string, def bool) bool {
	v, ok := e.lookup(name)
	if !ok {
		return def
	}
	switch strings.ToLower(v) {
	case "1", "true", "t", "yes", "y", "on":
		return true
	case "0", "false", "f", "no", "n", "off":
		return false
	}
	e.fail(name, v, "not a boolean (true or false)")
	return def
}

// LoadSettings reads the settings from environ (os.Environ's form: KEY=value).
func LoadSettings(environ []string) (*Settings, error) {
	e := &env{vars: map[string]string{}}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(strings.ToUpper(k), envPrefix) {
			e.vars[strings.ToUpper(k)] = v
		}
	}
	s := &Settings{
		Host:                  e.str("HOST", "127.0.0.1"),
		Port:                  e.integer("PORT", 50051, 0, 65535),
		MetricsPort:           e.integer("METRICS_PORT", -1, 0, 65535),
		LogLevel:              strings.ToUpper(e.str("LOG_LEVEL", "INFO")),
		LogFormat:             e.str("LOG_FORMAT", "json"),
		Grace:                 e.seconds("GRACE_SECONDS", 10, true),
		MaxMessageBytes:       e.integer("MAX_MESSAGE_BYTES", 16<<20, 1024, math.MaxInt32),
		MaxConcurrentRPCs:     e.integer("MAX_CONCURRENT_RPCS", 0, 1, math.MaxInt32),
		MaxHealthWatches:      e.integer("MAX_HEALTH_WATCHES", 256, 1, math.MaxInt32),
		TLSCertFile:           e.str("TLS_CERT_FILE", ""),
		TLSKeyFile:            e.str("TLS_KEY_FILE", ""),
		TLSClientCAFile:       e.str("TLS_CLIENT_CA_FILE", ""),
		MaxConnectionAge:      e.seconds("MAX_CONNECTION_AGE_S", 0, false),
		MaxConnectionAgeGrace: e.seconds("MAX_CONNECTION_AGE_GRACE_S", 300, false),
		KeepaliveTime:         e.seconds("KEEPALIVE_TIME_S", 30, false),
		KeepaliveTimeout:      e.seconds("KEEPALIVE_TIMEOUT_S", 10, false),

		RateLimitPerS:  e.number("RATE_LIMIT_PER_S", 0, false),
		RateLimitBurst: e.integer("RATE_LIMIT_BURST", 0, 1, math.MaxInt32),

		UpstreamTLS:         e.boolean("UPSTREAM_TLS", false),
		UpstreamCAFile:      e.str("UPSTREAM_CA_FILE", ""),
		UpstreamCertFile:    e.str("UPSTREAM_CERT_FILE", ""),
		UpstreamKeyFile:     e.str("UPSTREAM_KEY_FILE", ""),
		UpstreamServerName:  e.str("UPSTREAM_SERVER_NAME", ""),
		UpstreamHealthCheck: e.boolean("UPSTREAM_HEALTH_CHECK", true),
		UpstreamToken:       e.str("UPSTREAM_TOKEN", ""),
		UpstreamWait:        e.seconds("UPSTREAM_WAIT_S", 5, true),
		ReconnectBackoffMax: e.seconds("RECONNECT_BACKOFF_MAX_S", 2, false),

		HealthInterval:   e.seconds("HEALTH_INTERVAL_S", 1, false),
		DiscoveryTimeout: e.seconds("DISCOVERY_TIMEOUT_S", 10, false),
	}
	if !logLevels[s.LogLevel] {
		e.fail("LOG_LEVEL", s.LogLevel, "one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
	}
	if s.LogFormat != "json" && s.LogFormat != "text" {
		e.fail("LOG_FORMAT", s.LogFormat, "json or text")
	}
	s.APIKeys = list(e.vars[envPrefix+"API_KEYS"])
	s.AdminAPIKeys = list(e.vars[envPrefix+"ADMIN_API_KEYS"])
	admin, set := e.vars[envPrefix+"ADMIN_METHODS"]
	if !set {
		admin = defaultAdminMethods
	}
	s.AdminMethods = list(admin)
	if s.RateLimitBurst == 0 {
		s.RateLimitBurst = int(math.Max(1, math.Ceil(s.RateLimitPerS))) // one second's worth
	}
	s.checkFiles(e)
	s.Upstreams = upstreams(e)
	if len(e.errs) > 0 {
		return nil, e.errs
	}
	return s, nil
}

func (s *Settings) checkFiles(e *env) {
	if (s.TLSCertFile == "") != (s.TLSKeyFile == "") {
		e.errs = append(e.errs, envPrefix+"TLS_CERT_FILE and "+envPrefix+"TLS_KEY_FILE go together: set both or neither")
	}
	if s.TLSClientCAFile != "" && s.TLSCertFile == "" {
		e.errs = append(e.errs, envPrefix+"TLS_CLIENT_CA_FILE (mutual TLS) needs "+envPrefix+"TLS_CERT_FILE and "+
			envPrefix+"TLS_KEY_FILE")
	}
	if (s.UpstreamCertFile == "") != (s.UpstreamKeyFile == "") {
		e.errs = append(e.errs, envPrefix+"UPSTREAM_CERT_FILE and "+envPrefix+"UPSTREAM_KEY_FILE go together: "+
			"set both or neither")
	}
	if !s.UpstreamTLS && (s.UpstreamCAFile != "" || s.UpstreamCertFile != "") {
		e.errs = append(e.errs, envPrefix+"UPSTREAM_CA_FILE / "+envPrefix+"UPSTREAM_CERT_FILE need "+envPrefix+
			"UPSTREAM_TLS=true")
	}
	for name, path := range map[string]string{"TLS_CERT_FILE": s.TLSCertFile, "TLS_KEY_FILE": s.TLSKeyFile,
		"TLS_CLIENT_CA_FILE": s.TLSClientCAFile, "UPSTREAM_CA_FILE": s.UpstreamCAFile,
		"UPSTREAM_CERT_FILE": s.UpstreamCertFile, "UPSTREAM_KEY_FILE": s.UpstreamKeyFile} {
		if path == "" {
			continue
		}
		if f, err := os.Open(path); err != nil {
			e.fail(name, path, "cannot be read: %v", err)
		} else {
			f.Close()
		}
	}
	sort.Strings(e.errs)
}

// upstreams from GATEWAY_<NAME>_ADDR / GATEWAY_<NAME>_SERVICES.
func upstreams(e *env) []UpstreamConfig {
	found := map[string]*UpstreamConfig{}
	vars := map[string][2]string{} // name -> variable names (ADDR, SERVICES)
	keys := make([]string, 0, len(e.vars))
	for k := range e.vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		m := upstreamVarRe.FindStringSubmatch(k)
		if m == nil {
			continue
		}
		name := strings.ReplaceAll(strings.ToLower(m[1]), "_", "-")
		u := found[name]
		if u == nil {
			u = &UpstreamConfig{Name: name}
			found[name] = u
		}
		v := vars[name]
		value := e.vars[k]
		if m[2] == "ADDR" {
			v[0] = k
			u.Target = strings.TrimSpace(value)
			dial, list, err := ChannelTarget(value)
			if err != nil {
				e.errs = append(e.errs, fmt.Sprintf("%s=%s: %v", k, quote(value), err))
			}
			u.Dial, u.List = dial, list
		} else {
			v[1] = k
			services, err := ServiceNames(value)
			if err != nil {
				e.errs = append(e.errs, fmt.Sprintf("%s=%s: %v", k, quote(value), err))
			}
			u.Services = services
		}
		vars[name] = v
	}
	out := make([]UpstreamConfig, 0, len(found))
	for name, u := range found {
		if !upstreamNameRe.MatchString(name) {
			e.errs = append(e.errs, fmt.Sprintf("upstream names are lower-case words joined by '-', not %s", quote(name)))
		}
		if vars[name][0] == "" {
			e.errs = append(e.errs, fmt.Sprintf("%s is set but %s%s_ADDR is not: where does %s listen?",
				vars[name][1], envPrefix, strings.ToUpper(strings.ReplaceAll(name, "-", "_")), name))
		}
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ServiceNames parses a comma-separated list of fully qualified gRPC service names.
func ServiceNames(value string) ([]string, error) {
	var out []string
	for _, name := range strings.Split(value, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		if !serviceNameRe.MatchString(name) {
			return nil, fmt.Errorf("not a fully qualified gRPC service name: %s", quote(name))
		}
		out = append(out, name)
	}
	return out, nil
}

// ChannelTarget turns an address, a gRPC target URI, or a comma-separated list of IP:port into what the upstream's
// channel dials: a dns:// target (every address of the name, round robin; also for a plain host:port, as gRPC's
// default resolver does) or a fixed list of addresses (ipv4:/ipv6: targets and comma-separated lists).
func ChannelTarget(value string) (dial string, list []string, err error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return "", nil, fmt.Errorf("an upstream address is empty")
	}
	lower := strings.ToLower(value)
	switch {
	case strings.HasPrefix(lower, "ipv4:"), strings.HasPrefix(lower, "ipv6:"):
		want := 4
		if strings.HasPrefix(lower, "ipv6:") {
			want = 6
		}
		list, family, err := addressList(value[5:], value)
		if err != nil {
			return "", nil, err
		}
		if family != want {
			return "", nil, fmt.Errorf("%s: not IPv%d addresses", quote(value), want)
		}
		return list[0], list, nil
	case strings.HasPrefix(lower, "dns:"):
		rest := value[4:]
		authority := ""
		if strings.HasPrefix(rest, "//") {
			authority, rest, _ = strings.Cut(rest[2:], "/")
		}
		if _, _, err := splitHostPort(rest, true); err != nil {
			return "", nil, err
		}
		return "dns://" + authority + "/" + rest, nil, nil
	case strings.HasPrefix(lower, "unix:"), strings.HasPrefix(lower, "passthrough:"):
		return value, nil, nil
	case strings.Contains(value, "://") || hasScheme(lower, "unix-abstract:", "vsock:", "xds:"):
		scheme, _, _ := strings.Cut(value, ":")
		return "", nil, fmt.Errorf("%s: the scheme %s: is not supported here (dns:, ipv4:, ipv6:, unix:, passthrough: are)",
			quote(value), scheme)
	}
	if !strings.Contains(value, ",") {
		if _, _, err := splitHostPort(value, false); err != nil {
			return "", nil, err
		}
		return "dns:///" + value, nil, nil
	}
	list, _, err = addressList(value, value)
	if err != nil {
		return "", nil, err
	}
	return list[0], list, nil
}

func hasScheme(value string, schemes ...string) bool {
	for _, s := range schemes {
		if strings.HasPrefix(value, s) {
			return true
		}
	}
	return false
}

// addressList parses "ip:port,ip:port" (localhost stands for 127.0.0.1): the addresses and their IP family.
func addressList(value, whole string) ([]string, int, error) {
	var out []string
	families := map[int]bool{}
	for _, item := range strings.Split(value, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		host, port, err := splitHostPort(item, false)
		if err != nil {
			return nil, 0, err
		}
		if host == "localhost" {
			host = "127.0.0.1"
		}
		ip := net.ParseIP(strings.Trim(host, "[]"))
		if ip == nil {
			return nil, 0, fmt.Errorf("%s: a list of addresses takes IP addresses only (%s is a name); "+
				"for a name with several addresses use dns:///%s:<port>", quote(whole), quote(host), host)
		}
		if ip.To4() != nil {
			families[4] = true
		} else {
			families[6] = true
		}
		out = append(out, net.JoinHostPort(ip.String(), port))
	}
	if len(out) == 0 {
		return nil, 0, fmt.Errorf("an upstream address is empty")
	}
	if len(families) != 1 {
		return nil, 0, fmt.Errorf("%s: mixes IPv4 and IPv6 addresses", quote(whole))
	}
	if families[4] {
		return out, 4, nil
	}
	return out, 6, nil
}

// splitHostPort checks host:port (the port may be left out where gRPC defaults it: after dns:).
func splitHostPort(item string, portOptional bool) (string, string, error) {
	host, port, err := net.SplitHostPort(item)
	if err != nil && portOptional && item != "" && !strings.Contains(strings.TrimPrefix(item, "["), "]:") {
		if _, _, again := net.SplitHostPort(item + ":443"); again == nil {
			return strings.Trim(item, "[]"), "443", nil
		}
	}
	if err != nil || host == "" {
		return "", "", fmt.Errorf("%s: expected host:port", quote(item))
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n >= 65536 {
		return "", "", fmt.Errorf("%s: expected host:port", quote(item))
	}
	return host, port, nil
}

// quote as Python's repr does for a plain string: 'value'.
// quote is s as an error message may show it: escaped, at most 40 characters of it, and its length when cut (a
// status message travels in a header, which every hop limits), as the Python servers' maas_runtime.errors.quote.
func quote(s string) string {
	const limit = 40
	runes := []rune(s)
	cut := len(runes) > limit
	if cut {
		runes = runes[:limit]
	}
	q := strconv.Quote(string(runes))
	q = "'" + strings.ReplaceAll(strings.ReplaceAll(q[1:len(q)-1], `\"`, `"`), "'", `\'`) + "'"
	if cut {
		q += fmt.Sprintf("… (%d characters)", len([]rune(s)))
	}
	return q
}

// The methods only an admin key may call (when API keys are on): the ones that change what every caller gets.
const defaultAdminMethods = "/maas.music.v1.MusicRecommender/RetrainModel,/maas.music.v1.MusicRecommender/UpsertTracks"

// list: the comma-separated items of v, trimmed, empty ones dropped.
func list(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
