package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestUpstreamsFromAddrVariables(t *testing.T) {
	s, err := LoadSettings([]string{
		"GATEWAY_NLP_ANALYSIS_ADDR=dns:///nlp-analysis:50052",
		"GATEWAY_TEXT_GENERATOR_ADDR=10.0.0.5:50053,10.0.0.6:50053",
		"GATEWAY_LEGACY_ADDR=legacy.internal:9000",
		"GATEWAY_LEGACY_SERVICES=acme.v1.Legacy, acme.v1.Other",
		"gateway_port=6000",                // names are case-insensitive
		"NLP_ANALYSIS_ADDR=ignored:1",      // another prefix: not the gateway's
		"GATEWAY_MODEL_REPOSITORY=/models", // not a gateway setting: ignored
	})
	if err != nil {
		t.Fatal(err)
	}
	if s.Port != 6000 {
		t.Errorf("port %d", s.Port)
	}
	want := []UpstreamConfig{
		{Name: "legacy", Target: "legacy.internal:9000", Dial: "dns:///legacy.internal:9000",
			Services: []string{"acme.v1.Legacy", "acme.v1.Other"}},
		{Name: "nlp-analysis", Target: "dns:///nlp-analysis:50052", Dial: "dns:///nlp-analysis:50052"},
		{Name: "text-generator", Target: "10.0.0.5:50053,10.0.0.6:50053", Dial: "10.0.0.5:50053",
			List: []string{"10.0.0.5:50053", "10.0.0.6:50053"}},
	}
	if !reflect.DeepEqual(s.Upstreams, want) {
		t.Errorf("upstreams\n got %+v\nwant %+v", s.Upstreams, want)
	}
}

func TestDefaults(t *testing.T) {
	s, err := LoadSettings(nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Host != "127.0.0.1" || s.Port != 50051 || s.MetricsPort != -1 || s.LogFormat != "json" ||
		s.Grace != 10*time.Second || s.MaxMessageBytes != 16<<20 || s.MaxConcurrentRPCs != 0 ||
		s.MaxConnectionAge != 0 || len(s.APIKeys) != 0 || s.RateLimitPerS != 0 || s.UpstreamTLS ||
		!s.UpstreamHealthCheck || s.ReconnectBackoffMax != 2*time.Second || s.HealthInterval != time.Second ||
		s.DiscoveryTimeout != 10*time.Second || len(s.Upstreams) != 0 {
		t.Errorf("defaults: %+v", s)
	}
}

func TestKeysAndBurst(t *testing.T) {
	s, err := LoadSettings([]string{"GATEWAY_API_KEYS= key-one, key-two ,,", "GATEWAY_RATE_LIMIT_PER_S=0.5"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.APIKeys, []string{"key-one", "key-two"}) || s.RateLimitBurst != 1 {
		t.Errorf("keys %q burst %d", s.APIKeys, s.RateLimitBurst)
	}
	s, _ = LoadSettings([]string{"GATEWAY_RATE_LIMIT_PER_S=2.5"})
	if s.RateLimitBurst != 3 { // one second's worth
		t.Errorf("burst %d", s.RateLimitBurst)
	}
}

func TestTargets(t *testing.T) {
	for _, c := range []struct {
		given, dial string
		list        []string
	}{
		{"127.0.0.1:50052", "dns:///127.0.0.1:50052", nil},
		{"nlp-analysis:50052", "dns:///nlp-analysis:50052", nil}, // every address of the name, as gRPC's default
		{"dns:///nlp-analysis.maas.svc.cluster.local:50052", "dns:///nlp-analysis.maas.svc.cluster.local:50052", nil},
		{"dns://10.0.0.2/nlp:50052", "dns://10.0.0.2/nlp:50052", nil},
		{"127.0.0.1:1, localhost:2", "127.0.0.1:1", []string{"127.0.0.1:1", "127.0.0.1:2"}},
		{"[::1]:1,[::1]:2", "[::1]:1", []string{"[::1]:1", "[::1]:2"}},
		{"ipv4:10.0.0.1:1,10.0.0.2:1", "10.0.0.1:1", []string{"10.0.0.1:1", "10.0.0.2:1"}},
		{"ipv6:[::1]:1", "[::1]:1", []string{"[::1]:1"}},
		{"unix:/run/maas/nlp.sock", "unix:/run/maas/nlp.sock", nil},
	} {
		dial, list, err := ChannelTarget(c.given)
		if err != nil || dial != c.dial || !reflect.DeepEqual(list, c.list) {
			t.Errorf("%q: got %q %q %v, want %q %q", c.given, dial, list, err, c.dial, c.list)
		}
	}
}

func TestBadTargets(t *testing.T) {
	for given, message := range map[string]string{
		"":                    "empty",
		"nlp-analysis":        "expected host:port",
		"a:1,b:2":             "IP addresses only",
		"127.0.0.1:1,[::1]:2": "mixes IPv4 and IPv6",
		"127.0.0.1:70000":     "expected host:port",
		"ipv4:[::1]:1":        "not IPv4 addresses",
		"xds:///nlp":          "not supported",
	} {
		if _, _, err := ChannelTarget(given); err == nil || !strings.Contains(err.Error(), message) {
			t.Errorf("%q: %v, want %q", given, err, message)
		}
	}
}

func TestErrorsNameTheVariable(t *testing.T) {
	for _, c := range []struct {
		env     []string
		message string
	}{
		{[]string{"GATEWAY_PORT=abc"}, "GATEWAY_PORT='abc': not an integer"},
		{[]string{"GATEWAY_PORT=70000"}, "GATEWAY_PORT='70000': must be between 0 and 65535"},
		{[]string{"GATEWAY_MAX_MESSAGE_BYTES=10"}, "GATEWAY_MAX_MESSAGE_BYTES='10': must be between 1024"},
		{[]string{"GATEWAY_RATE_LIMIT_PER_S=0"}, "GATEWAY_RATE_LIMIT_PER_S='0': must be more than 0"},
		{[]string{"GATEWAY_UPSTREAM_TLS=maybe"}, "GATEWAY_UPSTREAM_TLS='maybe': not a boolean"},
		{[]string{"GATEWAY_LOG_FORMAT=xml"}, "GATEWAY_LOG_FORMAT='xml': json or text"},
		{[]string{"GATEWAY_ECHO_ADDR=a:1,b:2"}, "GATEWAY_ECHO_ADDR='a:1,b:2': 'a:1,b:2': a list of addresses"},
		{[]string{"GATEWAY_ECHO_ADDR=a:1", "GATEWAY_ECHO_SERVICES=NotQualified"},
			"GATEWAY_ECHO_SERVICES='NotQualified': not a fully qualified gRPC service name"},
		{[]string{"GATEWAY_ECHO_SERVICES=a.v1.Echo"}, "GATEWAY_ECHO_SERVICES is set but GATEWAY_ECHO_ADDR is not"},
		{[]string{"GATEWAY_TLS_CERT_FILE=/etc/hostname"}, "go together"},
		{[]string{"GATEWAY_TLS_CLIENT_CA_FILE=/etc/hostname"}, "needs GATEWAY_TLS_CERT_FILE"},
		{[]string{"GATEWAY_UPSTREAM_CA_FILE=/etc/hostname"}, "need GATEWAY_UPSTREAM_TLS=true"},
		{[]string{"GATEWAY_UPSTREAM_TLS=1", "GATEWAY_UPSTREAM_CA_FILE=/no/such/file"},
			"GATEWAY_UPSTREAM_CA_FILE='/no/such/file': cannot be read"},
	} {
		_, err := LoadSettings(c.env)
		if err == nil || !strings.Contains(err.Error(), c.message) {
			t.Errorf("%v: %v, want %q", c.env, err, c.message)
		}
	}
}

func TestChannelsBalanceRoundRobinAndReconnectQuickly(t *testing.T) {
	s, err := LoadSettings([]string{"GATEWAY_RECONNECT_BACKOFF_MAX_S=1.5"})
	if err != nil {
		t.Fatal(err)
	}
	var config map[string]interface{}
	json.Unmarshal([]byte(ServiceConfig(s)), &config) //nolint:errcheck
	if !reflect.DeepEqual(config, map[string]interface{}{
		"loadBalancingConfig": []interface{}{map[string]interface{}{"round_robin": map[string]interface{}{}}},
		"healthCheckConfig":   map[string]interface{}{"serviceName": ""}}) {
		t.Errorf("service config %v", config)
	}
	params := ConnectParams(s)
	if params.Backoff.MaxDelay != 1500*time.Millisecond || params.Backoff.BaseDelay != 200*time.Millisecond {
		t.Errorf("backoff %+v", params.Backoff)
	}
	s.UpstreamHealthCheck = false
	if strings.Contains(ServiceConfig(s), "healthCheckConfig") {
		t.Error("health checks asked for while off")
	}
}
