"""The Node.js example client (clients/node: @grpc/grpc-js + @grpc/proto-loader over protos/), run against the real
suite through the gateway. The checks are conftest.py's ClientChecks, shared with the Go client (same command
line, same JSON)."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sentiment_labels_a_clearly_negative_sentence_negative(node_cli, client_checks):
    client_checks.sentiment(node_cli)


def test_zero_shot_classification(node_cli, client_checks):
    client_checks.classify(node_cli)


def test_embeddings_are_384_d_unit_vectors(node_cli, client_checks):
    client_checks.embed(node_cli)


def test_stream_arrives_in_deltas_that_join_to_the_unary_text_for_the_same_seed(node_cli, client_checks):
    client_checks.stream_equals_unary(node_cli)


def test_invalid_argument_names_the_field(node_cli, client_checks):
    client_checks.invalid_argument(node_cli)


def test_deadline_is_honoured(node_cli, client_checks):
    client_checks.deadline(node_cli)


def test_kserve_v2_live_and_model_metadata(node_cli, client_checks):
    client_checks.kserve(node_cli)


def test_the_readme_tour(node_cli, client_checks):
    client_checks.tour(node_cli)


def test_every_service_in_protos_is_loaded(node_cli):
    """proto-loader reads every .proto under protos/ (music's too, once they land), not a fixed list."""
    declared = set()
    for proto in (ROOT / "protos").rglob("*.proto"):
        text = proto.read_text()
        package = re.search(r"^package\s+([\w.]+);", text, re.M).group(1)
        declared |= {f"{package}.{name}" for name in re.findall(r"^service\s+(\w+)", text, re.M)}
    done = node_cli("--json", "services")
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout)) == declared
