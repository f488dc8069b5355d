"""Gateway configuration: one GATEWAY_<NAME>_ADDR variable per upstream, targets for one or many replicas."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from maas_gateway.settings import GatewaySettings, UpstreamConfig, channel_target
from maas_gateway.upstream import channel_options


def test_upstreams_from_addr_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_NLP_ANALYSIS_ADDR", "dns:///nlp-analysis:50052")
    monkeypatch.setenv("GATEWAY_TEXT_GENERATOR_ADDR", "10.0.0.5:50053,10.0.0.6:50053")
    monkeypatch.setenv("GATEWAY_LEGACY_ADDR", "legacy.internal:9000")
    monkeypatch.setenv("GATEWAY_LEGACY_SERVICES", "acme.v1.Legacy, acme.v1.Other")
    monkeypatch.setenv("GATEWAY_PORT", "6000")
    monkeypatch.setenv("NLP_ANALYSIS_ADDR", "ignored:1")  # another prefix: not the gateway's
    s = GatewaySettings()
    assert s.port == 6000
    assert s.upstreams == {
        "nlp-analysis": UpstreamConfig(target="dns:///nlp-analysis:50052"),
        "text-generator": UpstreamConfig(target="ipv4:10.0.0.5:50053,10.0.0.6:50053"),
        "legacy": UpstreamConfig(target="legacy.internal:9000", services=("acme.v1.Legacy", "acme.v1.Other")),
    }


def test_upstreams_given_to_the_constructor_replace_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_NLP_ANALYSIS_ADDR", "127.0.0.1:50052")
    s = GatewaySettings(upstreams={"echo": UpstreamConfig(target="127.0.0.1:1")})
    assert list(s.upstreams) == ["echo"]


@pytest.mark.parametrize("given, target", [
    ("127.0.0.1:50052", "127.0.0.1:50052"),
    ("nlp-analysis:50052", "nlp-analysis:50052"),  # grpc's DNS resolver: every address of the name
    ("dns:///nlp-analysis.maas.svc.cluster.local:50052", "dns:///nlp-analysis.maas.svc.cluster.local:50052"),
    ("127.0.0.1:1, localhost:2", "ipv4:127.0.0.1:1,127.0.0.1:2"),
    ("[::1]:1,[::1]:2", "ipv6:[::1]:1,[::1]:2"),
    ("unix:/run/maas/nlp.sock", "unix:/run/maas/nlp.sock"),
])
def test_targets(given: str, target: str) -> None:
    assert channel_target(given) == target


@pytest.mark.parametrize("given, message", [
    ("", "empty"),
    ("nlp-analysis", "expected host:port"),
    ("a:1,b:2", "IP addresses only"),
    ("127.0.0.1:1,[::1]:2", "mixes IPv4 and IPv6"),
    ("127.0.0.1:70000", "expected host:port"),
])
def test_bad_targets(given: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        channel_target(given)


def test_bad_names_and_services() -> None:
    with pytest.raises(ValidationError, match="lower-case"):
        GatewaySettings(upstreams={"Bad_Name": UpstreamConfig(target="a:1")})
    with pytest.raises(ValidationError, match="fully qualified"):
        UpstreamConfig(target="a:1", services="NotQualified")


def test_channels_balance_round_robin_and_reconnect_quickly() -> None:
    options = dict(channel_options(GatewaySettings(reconnect_backoff_max_s=1.5, max_message_bytes=2048)))
    config = json.loads(options["grpc.service_config"])
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    assert config["healthCheckConfig"] == {"serviceName": ""}
    assert options["grpc.max_reconnect_backoff_ms"] == 1500
    assert options["grpc.max_receive_message_length"] == options["grpc.max_send_message_length"] == 2048
    assert options["grpc.enable_http_proxy"] == 0
    no_checks = json.loads(dict(channel_options(GatewaySettings(upstream_health_check=False)))["grpc.service_config"])
    assert "healthCheckConfig" not in no_checks
