"""The Go example client (clients/go: stubs from protoc-gen-go and protoc-gen-go-grpc, built in GOPATH mode
against Debian's packages), run against the real suite through the gateway. The checks are conftest.py's ClientChecks, shared with the Node.js
client (same command line, same JSON)."""


def test_sentiment_labels_a_clearly_negative_sentence_negative(go_cli, client_checks):
    client_checks.sentiment(go_cli)


def test_zero_shot_classification(go_cli, client_checks):
    client_checks.classify(go_cli)


def test_embeddings_are_384_d_unit_vectors(go_cli, client_checks):
    client_checks.embed(go_cli)


def test_stream_arrives_in_deltas_that_join_to_the_unary_text_for_the_same_seed(go_cli, client_checks):
    client_checks.stream_equals_unary(go_cli)


def test_invalid_argument_names_the_field(go_cli, client_checks):
    client_checks.invalid_argument(go_cli)


def test_deadline_is_honoured(go_cli, client_checks):
    client_checks.deadline(go_cli)


def test_kserve_v2_live_and_model_metadata(go_cli, client_checks):
    client_checks.kserve(go_cli)


def test_the_readme_tour(go_cli, client_checks):
    client_checks.tour(go_cli)


def test_every_proto_is_generated_into_the_gopath_layout():
    """build.sh generates every .proto under protos/ (music's too, once they land), not a fixed list."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    gen = root / "clients" / "go" / "build" / "gopath" / "src" / "maasgen"
    for proto in (root / "protos").rglob("*.proto"):
        rel = proto.relative_to(root / "protos")
        assert (gen / rel.parent / f"{proto.stem}.pb.go").is_file(), f"{rel} not generated: run `make clients`"
