"""``maas``: the suite from the command line, through the gateway.

    maas sentiment "I love this record!" "What a dull film"
    maas classify "slow sad piano at 3am"                     # built-in moods and genres
    maas classify "The striker scored twice" --labels sports,politics
    maas embed "calm piano for studying"
    maas entities "Taylor Swift played Wembley Stadium in London"
    maas health

Options before the command: ``--target`` (default $MAAS_TARGET, else 127.0.0.1:50051), ``--api-key`` (default
$MAAS_API_KEY), ``--timeout``, ``--json`` (the responses as JSON, one object per line), TLS (``--tls``,
``--ca-file``, ``--cert-file``, ``--key-file``). Exit status: 0 done, 1 the call failed (the message says
the code, the server's reason and the request id to quote), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any, Callable

from google.protobuf.json_format import MessageToDict

from maas_client.client import Client
from maas_client.errors import MaasError
from maas_client.services import NlpAnalysis


def _bar(score: float, width: int = 20) -> str:
    n = max(0, min(width, round(score * width)))
    return "█" * n + "·" * (width - n)


def _print_json(response: Any) -> None:
    print(json.dumps(MessageToDict(response, preserving_proto_field_name=True)))


def cmd_sentiment(client: Client, args: argparse.Namespace) -> None:
    response = client.nlp.analyze_sentiment(args.texts)
    if args.json:
        return _print_json(response)
    for text, r in zip(args.texts, response.results):
        label = NlpAnalysis.Sentiment.Name(r.label).removeprefix("SENTIMENT_").lower()
        print(f"{label:8s}  negative {r.negative:.2f}  neutral {r.neutral:.2f}  positive {r.positive:.2f}  {text}")


def cmd_classify(client: Client, args: argparse.Namespace) -> None:
    labels = [label.strip() for label in (args.labels or "").split(",") if label.strip()]
    groups = [g.strip() for g in (args.groups or "").split(",") if g.strip()]
    response = client.nlp.classify(args.texts, labels, multi_label=args.multi_label, template=args.template or "",
                                   groups=groups)
    if args.json:
        return _print_json(response)
    for text, result in zip(args.texts, response.results):
        print(text)
        for s in result.scores[: args.top]:
            group = f"{s.group:6s} " if s.group else ""
            print(f"  {group}{s.label:24s} {_bar(s.score)} {s.score:.2f}")


def cmd_embed(client: Client, args: argparse.Namespace) -> None:
    response = client.nlp.embed(args.texts)
    if args.json:
        return _print_json(response)
    for text, e in zip(args.texts, response.embeddings):
        values = list(e.values)
        norm = math.sqrt(math.fsum(v * v for v in values))
        head = ", ".join(f"{v:+.4f}" for v in values[:6])
        print(f"dimension {response.dimension}  norm {norm:.3f}  [{head}{', ...' if len(values) > 6 else ''}]  {text}")


def cmd_entities(client: Client, args: argparse.Namespace) -> None:
    response = client.nlp.extract_entities(args.texts)
    if args.json:
        return _print_json(response)
    for text, found in zip(args.texts, response.results):
        print(text)
        if not found.entities:
            print("  (no entities)")
        for e in found.entities:
            print(f"  {e.label:10s} [{e.span.start}, {e.span.end})  {e.text}  {e.score:.2f}")


def cmd_health(client: Client, args: argparse.Namespace) -> int:
    names = args.service or ["", *(_routed(client))]
    rows, serving = [], True
    for name in names:
        try:
            status = client.health(name)
        except MaasError as e:
            status = "NOT_FOUND" if e.code.name == "NOT_FOUND" else f"{e.code.name}: {e.message}"
        serving &= status == "SERVING"
        rows.append((name or "(gateway)", status))
    if args.json:
        print(json.dumps({name: status for name, status in rows}))
    else:
        width = max(len(n) for n, _ in rows)
        for name, status in rows:
            print(f"{name:{width}s}  {status}")
    return 0 if serving else 1


def _routed(client: Client) -> list[str]:
    """The services the server lists through reflection (all of the suite, through the gateway)."""
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    stub = reflection_pb2_grpc.ServerReflectionStub(client.channel)
    try:
        replies = list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                                 timeout=5, metadata=client._invoke.s.metadata("health", None)))
    except Exception:  # noqa: BLE001 - no reflection: only the server's own status is shown
        return []
    own = ("grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection")
    return [s.name for r in replies for s in r.list_services_response.service if s.name not in own]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="maas", description="Call the maas suite (through its gateway).",
                                epilog="Run `maas COMMAND --help` for a command's options.")
    p.add_argument("--target", help="host:port (default $MAAS_TARGET, else 127.0.0.1:50051)")
    p.add_argument("--api-key", help="API key (default $MAAS_API_KEY)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per call, retries included (default 30)")
    p.add_argument("--json", action="store_true", help="print the responses as JSON")
    p.add_argument("--tls", action="store_true", help="TLS with the system's roots")
    p.add_argument("--ca-file", help="PEM roots to trust (implies --tls)")
    p.add_argument("--cert-file", help="PEM client certificate (mutual TLS)")
    p.add_argument("--key-file", help="PEM key of the client certificate")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, fn: Callable, help_: str, texts: bool = True) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help_, description=help_)
        if texts:
            c.add_argument("texts", nargs="+", metavar="TEXT")
        c.set_defaults(fn=fn)
        return c

    command("sentiment", cmd_sentiment, "sentiment of each text (negative / neutral / positive)")
    c = command("classify", cmd_classify, "zero-shot classification, or the built-in moods and genres")
    c.add_argument("--labels", help="comma-separated labels (default: the built-in moods and genres)")
    c.add_argument("--multi-label", action="store_true", help="score each label on its own")
    c.add_argument("--template", help='hypothesis template with one "{}" (default: the model\'s)')
    c.add_argument("--groups", help="built-in groups to use: mood,genre (default: all)")
    c.add_argument("--top", type=int, default=5, help="labels shown per text (default 5)")
    command("embed", cmd_embed, "sentence embedding of each text")
    command("entities", cmd_entities, "named entities of each text")
    c = command("health", cmd_health, "grpc.health.v1 status of the gateway and of every service it routes",
                texts=False)
    c.add_argument("--service", action="append", help="only this service (repeatable); '' for the server")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")  # bars on a terminal that is not UTF-8
    try:
        client = Client(args.target, api_key=args.api_key, timeout=args.timeout, tls=args.tls,
                        ca_file=args.ca_file, cert_file=args.cert_file, key_file=args.key_file)
    except OSError as e:
        print(f"maas: {e}", file=sys.stderr)
        return 2
    with client:
        try:
            rc = args.fn(client, args)
        except MaasError as e:
            print(f"maas: {args.command} failed: {e}", file=sys.stderr)
            for v in e.field_violations:
                print(f"  {v.field}: {v.description}", file=sys.stderr)
            if e.retry_after is not None:
                print(f"  the server asks to retry after {e.retry_after:.2f} s", file=sys.stderr)
            return 1
    return rc or 0
