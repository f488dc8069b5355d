from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from maas_runtime.errors import FieldViolation, InvalidArgument, Overloaded
from maas_runtime.wire import invalid_utf8_field
from maas.nlp.v1 import nlp_pb2


def _with_bad_utf8(msg, good: str) -> bytes:
    data = msg.SerializeToString()
    return data.replace(good.encode(), b"\xff\xfe" + good.encode()[2:])


def test_finds_the_repeated_string_with_invalid_utf8():
    req = nlp_pb2.ClassifyTextRequest(texts=["fine", "also fine", "BADXX"], candidate_labels=["a"])
    assert invalid_utf8_field(req.DESCRIPTOR, _with_bad_utf8(req, "BADXX")) == "texts[2]"
    req = nlp_pb2.ClassifyTextRequest(texts=["fine"], candidate_labels=["x", "BADLABEL"])
    assert invalid_utf8_field(req.DESCRIPTOR, _with_bad_utf8(req, "BADLABEL")) == "candidate_labels[1]"


def test_valid_and_truncated_messages_name_no_field():
    req = nlp_pb2.EmbedTextRequest(texts=["héllo 東京 🎵"])
    assert invalid_utf8_field(req.DESCRIPTOR, req.SerializeToString()) is None
    assert invalid_utf8_field(req.DESCRIPTOR, req.SerializeToString()[:-3] + b"\x80") is None


def _details(status) -> list[any_pb2.Any]:
    md = dict(status.trailing_metadata)
    return list(status_pb2.Status.FromString(md["grpc-status-details-bin"]).details)


def test_invalid_argument_carries_bad_request_field_violations():
    err = InvalidArgument("texts[0]", "is empty", FieldViolation("texts[3]", "too long"))
    status = err.to_status()
    assert status.code.name == "INVALID_ARGUMENT" and "texts[0]" in status.details
    bad = error_details_pb2.BadRequest()
    assert _details(status)[0].Unpack(bad)
    assert [v.field for v in bad.field_violations] == ["texts[0]", "texts[3]"]


def test_overloaded_carries_retry_info():
    status = Overloaded("queue full", retry_after_s=0.25).to_status()
    info = error_details_pb2.RetryInfo()
    assert status.code.name == "RESOURCE_EXHAUSTED" and _details(status)[0].Unpack(info)
    assert info.retry_delay.ToMilliseconds() == 250


def test_error_messages_quote_a_short_escaped_prefix_and_stay_bounded():
    from maas_runtime.errors import MAX_MESSAGE_CHARS, InvalidArgument, NotFound, quote

    assert quote("folk") == "'folk'"
    assert quote("x" * 20_000) == "'" + "x" * 40 + "'… (20000 characters)"
    assert quote("a\nb\x00") == "'a\\nb\\x00'"
    err = InvalidArgument("style", "unknown style " + "y" * 20_000)  # a message written without quote()
    assert len(err.message) <= MAX_MESSAGE_CHARS and len(err.violations[0].description) <= 400
    status = err.to_status()
    assert len(status.details) <= MAX_MESSAGE_CHARS
    assert len(NotFound("z" * 50_000).message) == MAX_MESSAGE_CHARS
