"""Gateway configuration: GATEWAY_* variables, one GATEWAY_<NAME>_ADDR per upstream, targets for one or many
replicas. How each variable is read is unit-tested in Go, with the gateway's other units (gateway/cmd/maas-gateway/
*_test.go: upstreams from _ADDR / _SERVICES variables, targets, defaults, round robin and reconnection settings of
the channels; API keys and token buckets; KServe wire reading; reflection's symbol index; request ids; a panic
answered INTERNAL), run here by test_go_unit_tests. The other tests run the executable as `make up` and the
containers do, and check that a bad setting stops it at once with a message naming the variable."""

from __future__ import annotations

import subprocess

import pytest

from maas_gateway import BUILD_SCRIPT
from maas_gateway.testing import UpstreamConfig, gateway_exit


def test_go_unit_tests() -> None:
    done = subprocess.run(["bash", str(BUILD_SCRIPT), "test"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("upstreams, settings, message", [
    ({}, {"port": "abc"}, "GATEWAY_PORT='abc': not an integer"),
    ({}, {"max_message_bytes": 10}, "GATEWAY_MAX_MESSAGE_BYTES='10': must be between 1024"),
    ({}, {"health_interval_s": 0}, "GATEWAY_HEALTH_INTERVAL_S='0': must be more than 0"),
    ({}, {"log_format": "xml"}, "GATEWAY_LOG_FORMAT='xml': json or text"),
    ({}, {"upstream_tls": "maybe"}, "GATEWAY_UPSTREAM_TLS='maybe': not a boolean"),
    ({"nlp-analysis": "nlp-analysis"}, {},
     "GATEWAY_NLP_ANALYSIS_ADDR='nlp-analysis': 'nlp-analysis': expected host:port"),
    ({"echo": "a:1,b:2"}, {}, "a list of addresses takes IP addresses only ('a' is a name); for a name with several "
                              "addresses use dns:///a:<port>"),
    ({"echo": "127.0.0.1:1,[::1]:2"}, {}, "mixes IPv4 and IPv6 addresses"),
    ({"echo": "127.0.0.1:70000"}, {}, "expected host:port"),
    ({"echo": UpstreamConfig(target="a:1", services=("NotQualified",))}, {},
     "GATEWAY_ECHO_SERVICES='NotQualified': not a fully qualified gRPC service name: 'NotQualified'"),
])
def test_a_bad_setting_stops_the_gateway_naming_the_variable(upstreams: dict, settings: dict, message: str) -> None:
    done = gateway_exit(upstreams, **settings)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr, done.stderr


def test_every_bad_setting_is_reported_at_once() -> None:
    done = gateway_exit({"echo": ""}, port=-1, rate_limit_burst=0)
    assert done.returncode == 2
    for variable in ("GATEWAY_ECHO_ADDR", "GATEWAY_PORT", "GATEWAY_RATE_LIMIT_BURST"):
        assert variable in done.stderr, done.stderr
