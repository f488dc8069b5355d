"""``python -m maas_cluster demo``: call the running nlp-analysis over gRPC and print what it answers."""

from __future__ import annotations

import math
import sys
from typing import Any, Callable

import grpc

from . import health
from .config import ClusterConfig

WIDTH = 78

SENTIMENT_TEXTS = [
    "I absolutely loved this concert: the band was incredible and the crowd was electric!",
    "The film was a boring, painful mess and I want my money back.",
    "The album comes out on Friday on vinyl, CD and streaming.",
]
BUILTIN_TEXTS = [
    "A slow, melancholic piano ballad about a lost love on a rainy night.",
    "Pounding drums and screaming distorted guitars, built for the mosh pit.",
    "A sunny ukulele tune with handclaps, perfect for a summer road trip.",
]
CALLER_LABELS = ["space exploration", "cooking", "football", "romance"]
CALLER_TEXTS = [
    "The rocket cleared the launch tower and set course for the Moon.",
    "Whisk the eggs with the sugar, then gently fold in the flour.",
]
EMBED_TEXTS = [  # two related sentences and one unrelated
    "A dog is running happily through the park.",
    "A puppy plays outside on the grass.",
    "The central bank raised interest rates again.",
]
ENTITY_TEXT = "Taylor Swift played Wembley Stadium in London on 21 June 2024."


def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _bar(score: float, width: int = 20) -> str:
    n = max(0, min(width, round(score * width)))
    return "█" * n + "·" * (width - n)


def _model(resp: Any) -> str:
    if not resp.HasField("model"):
        return ""
    m = resp.model
    extra = ", ".join(x for x in (m.provider, f"build {m.build_key[:12]}" if m.build_key else "") if x)
    return f"  model: {m.name} v{m.version}" + (f" ({extra})" if extra else "")


def _cosine(a: list[float], b: list[float]) -> float:
    dot = math.fsum(x * y for x, y in zip(a, b))
    na = math.sqrt(math.fsum(x * x for x in a))
    nb = math.sqrt(math.fsum(y * y for y in b))
    return dot / (na * nb) if na and nb else float("nan")


def sentiment(stub: Any, pb: Any, timeout: float) -> list[str]:
    resp = stub.AnalyzeSentiment(pb.AnalyzeSentimentRequest(texts=SENTIMENT_TEXTS), timeout=timeout)
    out = []
    for text, r in zip(SENTIMENT_TEXTS, resp.results):
        label = pb.Sentiment.Name(r.label).removeprefix("SENTIMENT_")
        out.append(f"  “{_clip(text, 74)}”")
        out.append(f"      → {label:<8}  negative {r.negative:.2f}  neutral {r.neutral:.2f}  "
                   f"positive {r.positive:.2f}")
    out.append(_model(resp))
    return out


def classify_builtin(stub: Any, pb: Any, timeout: float) -> list[str]:
    resp = stub.ClassifyText(pb.ClassifyTextRequest(texts=BUILTIN_TEXTS), timeout=timeout)
    out = []
    for text, c in zip(BUILTIN_TEXTS, resp.results):
        out.append(f"  “{_clip(text, 74)}”")
        groups: dict[str, list[Any]] = {}
        for s in c.scores:
            groups.setdefault(s.group or "label", []).append(s)
        order = {"mood": 0, "genre": 1}
        for group, scores in sorted(groups.items(), key=lambda g: order.get(g[0], 2)):
            top = ", ".join(f"{s.label} {s.score:.2f}" for s in scores[:3])
            out.append(f"      {group:<6} {top}")
    out.append(_model(resp))
    return out


def classify_caller(stub: Any, pb: Any, timeout: float) -> list[str]:
    resp = stub.ClassifyText(pb.ClassifyTextRequest(texts=CALLER_TEXTS, candidate_labels=CALLER_LABELS),
                             timeout=timeout)
    out = [f"  labels: {', '.join(CALLER_LABELS)}"]
    for text, c in zip(CALLER_TEXTS, resp.results):
        out.append(f"  “{_clip(text, 74)}”")
        for s in c.scores:
            out.append(f"      {s.label:<18} {_bar(s.score)} {s.score:.2f}")
    out.append(_model(resp))
    return out


def embed(stub: Any, pb: Any, timeout: float) -> list[str]:
    resp = stub.EmbedText(pb.EmbedTextRequest(texts=EMBED_TEXTS), timeout=timeout)
    vecs = [list(e.values) for e in resp.embeddings]
    out = [f"  dimension {resp.dimension} (vectors of {', '.join(str(len(v)) for v in vecs)} values, "
           f"norms {', '.join(f'{math.sqrt(math.fsum(x * x for x in v)):.3f}' for v in vecs)})"]
    for i, t in enumerate(EMBED_TEXTS):
        out.append(f"  [{'ABC'[i]}] “{t}”")
    ab, ac, bc = _cosine(vecs[0], vecs[1]), _cosine(vecs[0], vecs[2]), _cosine(vecs[1], vecs[2])
    out.append(f"  cosine A·B (related)    {ab:+.3f}")
    out.append(f"  cosine A·C (unrelated)  {ac:+.3f}")
    out.append(f"  cosine B·C (unrelated)  {bc:+.3f}")
    verdict = "yes" if ab > max(ac, bc) else "NO (unexpected)"
    out.append(f"  related pair closer than either unrelated pair: {verdict}")
    out.append(_model(resp))
    return out


def entities(stub: Any, pb: Any, timeout: float) -> list[str]:
    resp = stub.ExtractEntities(pb.ExtractEntitiesRequest(texts=[ENTITY_TEXT]), timeout=timeout)
    out = [f"  “{ENTITY_TEXT}”"]
    found = resp.results[0].entities if resp.results else []
    if not found:
        out.append("      (no entities returned)")
    for e in found:
        out.append(f"      {e.label:<8} [{e.span.start:>2}, {e.span.end:>2})  “{e.text}”  {e.score:.2f}")
    out.append(_model(resp))
    return out


SECTIONS: list[tuple[str, Callable[[Any, Any, float], list[str]]]] = [
    ("AnalyzeSentiment: three texts", sentiment),
    ("ClassifyText: built-in moods and genres (no labels given)", classify_builtin),
    ("ClassifyText: your own labels (zero-shot)", classify_caller),
    ("EmbedText: sentence embeddings", embed),
    ("ExtractEntities: named entities", entities),
]


def run_demo(cfg: ClusterConfig, name: str = "nlp-analysis", timeout: float = 60.0) -> int:
    spec = cfg.get(name)
    inst = cfg.instance(spec)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")  # bars and quotes on a terminal that is not UTF-8
    try:
        from maas.nlp.v1 import nlp_pb2, nlp_pb2_grpc
    except ImportError as e:
        print(f"maas_cluster demo: the generated gRPC code is missing ({e}); run `make protos`", file=sys.stderr)
        return 1

    statuses = health.probe(inst.address, spec.grpc_services, timeout=5.0)
    if not health.is_serving(statuses):
        print(f"maas_cluster demo: {name} at {inst.address} is not serving ({health.summary(statuses)}); "
              f"start it with `make up`, check it with `make status`", file=sys.stderr)
        return 1

    print("=" * WIDTH)
    print(f"{name} at {inst.address}: grpc.health.v1 says SERVING")
    print("=" * WIDTH)
    answered = unimplemented = failed = 0
    with health.channel(inst.address) as ch:
        stub = nlp_pb2_grpc.NlpAnalysisStub(ch)
        for title, fn in SECTIONS:
            print(f"\n{title}")
            print("-" * min(WIDTH, len(title)))
            try:
                lines = fn(stub, nlp_pb2, timeout)
            except grpc.RpcError as e:
                code = e.code() if hasattr(e, "code") else None
                if code == grpc.StatusCode.UNIMPLEMENTED:
                    unimplemented += 1
                    details = e.details() if hasattr(e, "details") else ""
                    print("  not implemented by this server yet (the RPC answered UNIMPLEMENTED)")
                    if details and details != "Method not implemented!":
                        print(f"  server says: {details}")
                else:
                    failed += 1
                    details = e.details() if hasattr(e, "details") else str(e)
                    print(f"  FAILED: {code.name if code else 'ERROR'}: {details}")
                continue
            answered += 1
            for line in lines:
                if line:
                    print(line)
    total = len(SECTIONS)
    print("\n" + "=" * WIDTH)
    parts = [f"{answered} of {total} calls answered"]
    if unimplemented:
        parts.append(f"{unimplemented} not implemented yet")
    if failed:
        parts.append(f"{failed} failed")
    print("; ".join(parts))
    return 1 if failed else 0
