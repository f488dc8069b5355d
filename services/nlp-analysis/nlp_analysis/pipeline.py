"""The model work of nlp-analysis in plain Python/numpy: no gRPC here, so it is unit-tested directly.

Texts go through a per-model micro-batcher: texts of concurrent requests share one ``session.run``.
"""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from tokenizers import Tokenizer

from maas_runtime.batcher import MicroBatcher
from maas_runtime.errors import FieldViolation, InvalidArgument, quote
from maas_runtime.onnx_model import ModelLoadError, OnnxModel
from maas_runtime.settings import ModelSettings
from nlp_analysis import ner, zero_shot
from nlp_analysis.settings import NlpSettings

SENTIMENT_LABELS = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class SentimentScores:
    label: str
    negative: float
    neutral: float
    positive: float


@dataclass(frozen=True)
class LabelScore:
    label: str
    score: float
    group: str = ""


class TokenizedModel:
    """An ONNX text model fed (input_ids, attention_mask), with its tokenizer and its micro-batcher."""

    def __init__(self, model: OnnxModel, batching: ModelSettings) -> None:
        self.model = model
        self.max_length = int(model.manifest.get("max_length", 256))
        self.tokenizer = Tokenizer.from_file(str(model.directory / model.manifest.get("tokenizer", "tokenizer.json")))
        self.tokenizer.enable_truncation(self.max_length)
        self.tokenizer.enable_padding()
        self.output = model.outputs[0].name
        self.batcher: MicroBatcher[str, np.ndarray] = MicroBatcher(
            model.name, self._process, max_batch_size=batching.batch_size(model.provider),
            max_delay_s=batching.max_batch_delay_ms / 1000, max_queue_size=batching.max_queue_size,
            max_concurrent_batches=batching.executor_workers, max_queue_wait_s=batching.max_queue_wait_s)

    def run_sync(self, texts: list[str]) -> np.ndarray:
        encoded = self.tokenizer.encode_batch(texts)
        feeds = {
            "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
        }
        return self.model.run(feeds, [self.output])[self.output]

    async def _process(self, texts: list[str]) -> list[np.ndarray]:
        return list(await self.model.executor.run(self.run_sync, texts))

    async def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack(await self.batcher.submit(list(texts)))

    async def warmup(self) -> None:
        await self.model.executor.run(self.run_sync, ["Warm-up: a short sentence to run the graph once."])
        self.model.ready = True


class EntityModel:
    """The NER model: texts -> overlapping windows of word pieces (``nlp_analysis.ner``) -> micro-batcher ->
    ONNX -> per-word probabilities -> constrained BIO decoding -> entities with code-point offsets.

    The batcher's items are windows, so the windows of one long document and the short texts of other
    requests share ``session.run`` calls. Splitting and decoding (pure Python) run on the executor too.
    """

    def __init__(self, model: OnnxModel, batching: ModelSettings) -> None:
        self.model = model
        m = model.manifest
        if tuple(m.get("tags", ())) != ner.TAGS:
            raise ModelLoadError(f"model {model.name}: its tags differ from the serving code's: `make models`")
        if int(m.get("case_vocab", 0)) != ner.CASE_VOCAB:
            raise ModelLoadError(f"model {model.name} was built with other casing features: `make models`")
        tokenizer = Tokenizer.from_file(str(model.directory / m.get("tokenizer", "tokenizer.json")))
        self.encoder = ner.Encoder(tokenizer, int(m.get("max_pieces", 128)), int(m.get("overlap", 32)))
        self.batcher: MicroBatcher[ner.Window, np.ndarray] = MicroBatcher(
            model.name, self._process, max_batch_size=batching.batch_size(model.provider),
            max_delay_s=batching.max_batch_delay_ms / 1000, max_queue_size=batching.max_queue_size,
            max_concurrent_batches=batching.executor_workers, max_queue_wait_s=batching.max_queue_wait_s)

    def run_sync(self, windows: list[ner.Window]) -> list[np.ndarray]:
        """Probabilities per window. Windows are grouped by length so short texts are not padded to the
        length of a long document's windows."""
        order = sorted(range(len(windows)), key=lambda i: len(windows[i].input_ids))
        out: list[np.ndarray] = [np.empty(0)] * len(windows)
        start = 0
        while start < len(order):
            end = start + 1
            shortest = len(windows[order[start]].input_ids)
            while end < len(order) and len(windows[order[end]].input_ids) <= 2 * shortest + 8:
                end += 1
            group = [windows[i] for i in order[start:end]]
            probs = self.model.run(ner.pad_batch(group), ["probabilities"])["probabilities"]
            for row, i in enumerate(order[start:end]):
                out[i] = probs[row, :len(windows[i].input_ids)]
            start = end
        return out

    async def _process(self, windows: list[ner.Window]) -> list[np.ndarray]:
        return await self.model.executor.run(self.run_sync, windows)

    def _documents(self, texts: Sequence[str]) -> list[ner.Document]:
        return [self.encoder.document(t, i) for i, t in enumerate(texts)]

    @staticmethod
    def _decode(docs: list[ner.Document], probs: list[np.ndarray]) -> list[list[ner.Entity]]:
        out, k = [], 0
        for d in docs:
            n = len(d.windows)
            out.append(ner.decode(d.text, d.spans, ner.word_probabilities(d, probs[k:k + n])))
            k += n
        return out

    async def __call__(self, texts: Sequence[str]) -> list[list[ner.Entity]]:
        docs = await self.model.executor.run(self._documents, list(texts))
        windows = [w for d in docs for w in d.windows]
        if len(windows) > self.batcher.max_queue_size:  # could never be queued: no retry would help
            raise InvalidArgument("texts", f"{len(windows)} windows of {self.encoder.max_pieces} word pieces; at "
                                           f"most {self.batcher.max_queue_size} a request: send shorter texts")
        probs = await self.batcher.submit(windows) if windows else []
        return await self.model.executor.run(self._decode, docs, probs)

    async def warmup(self) -> None:
        await self(["Warm-up: Ada Lovelace met Charles Babbage in London in June 1833."])
        self.model.ready = True


class NlpPipeline:
    def __init__(self, encoder: OnnxModel, sentiment: OnnxModel, labels: OnnxModel, entities: OnnxModel,
                 settings: NlpSettings) -> None:
        self.settings = settings
        self.encoder = TokenizedModel(encoder, settings)
        self.sentiment_model = TokenizedModel(sentiment, settings)
        self.ner = EntityModel(entities, settings)
        self.labels = labels
        manifest_labels = labels.manifest["labels"]
        self.builtin_names = [lab["name"] for lab in manifest_labels]
        self.builtin_groups = [lab["group"] for lab in manifest_labels]
        params = labels.manifest["zero_shot"]
        self.template = params["template"]
        self.logit_scale = float(params["logit_scale"])
        self.threshold = float(params["multi_label_threshold"])
        sent_labels = tuple(sentiment.manifest.get("labels", SENTIMENT_LABELS))
        if sent_labels != SENTIMENT_LABELS:
            raise ValueError(f"sentiment model labels {sent_labels} != {SENTIMENT_LABELS}")
        self._label_cache: OrderedDict[str, np.ndarray] = OrderedDict()

    @property
    def models(self) -> list[OnnxModel]:
        return [self.encoder.model, self.sentiment_model.model, self.labels, self.ner.model]

    @property
    def dimension(self) -> int:
        return int(self.encoder.model.outputs[0].shape[-1])

    async def warmup(self) -> None:
        await asyncio.gather(self.encoder.warmup(), self.sentiment_model.warmup(), self.ner.warmup())
        await self.labels.warmup({"embeddings": np.zeros((1, self.dimension), dtype=np.float32)})

    async def close(self) -> None:
        await asyncio.gather(self.encoder.batcher.close(), self.sentiment_model.batcher.close(),
                             self.ner.batcher.close())

    # ---- validation ----------------------------------------------------------------------------
    def check_texts(self, texts: Sequence[str], field: str = "texts", max_chars: int | None = None,
                    max_total_chars: int | None = None) -> None:
        s = self.settings
        max_chars = max_chars or s.max_text_chars
        if not texts:
            raise InvalidArgument(field, "must hold at least one text")
        if len(texts) > s.max_texts:
            raise InvalidArgument(field, f"holds {len(texts)} texts; at most {s.max_texts} per request")
        bad = []
        for i, t in enumerate(texts):
            if not t.strip():
                bad.append(FieldViolation(f"{field}[{i}]", "is empty"))
            elif len(t) > max_chars:
                bad.append(FieldViolation(f"{field}[{i}]", f"has {len(t)} characters; at most {max_chars}"))
        if bad:
            raise InvalidArgument(bad[0].field, bad[0].description, *bad[1:])
        total = sum(len(t) for t in texts)
        if max_total_chars is not None and total > max_total_chars:
            raise InvalidArgument(field, f"holds {total} characters in all; at most {max_total_chars} per request")

    def _check_labels(self, labels: Sequence[str], groups: Sequence[str], template: str) -> None:
        s = self.settings
        if len(labels) > s.max_labels:
            raise InvalidArgument("candidate_labels", f"holds {len(labels)} labels; at most {s.max_labels}")
        seen: set[str] = set()
        for i, lab in enumerate(labels):
            if not lab.strip():
                raise InvalidArgument(f"candidate_labels[{i}]", "is empty")
            if len(lab) > s.max_label_chars:
                raise InvalidArgument(f"candidate_labels[{i}]", f"longer than {s.max_label_chars} characters")
            if lab in seen:
                raise InvalidArgument(f"candidate_labels[{i}]", f"duplicate label {quote(lab)}")
            seen.add(lab)
        if template and (template.count(zero_shot.PLACEHOLDER) != 1 or len(template) > s.max_label_chars):
            raise InvalidArgument("hypothesis_template", "must contain exactly one '{}' and be at most "
                                  f"{s.max_label_chars} characters")
        if labels and groups:
            raise InvalidArgument("label_groups", "applies to the built-in labels only; omit candidate_labels")
        known = sorted(set(self.builtin_groups))
        for i, g in enumerate(groups):
            if g not in known:
                raise InvalidArgument(f"label_groups[{i}]", f"unknown group {quote(g)}; known: {', '.join(known)}")

    # ---- tasks ---------------------------------------------------------------------------------
    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.check_texts(texts)
        return await self.encoder(texts)

    async def sentiment(self, texts: Sequence[str]) -> list[SentimentScores]:
        self.check_texts(texts)
        probs = await self.sentiment_model(texts)
        return [SentimentScores(SENTIMENT_LABELS[int(np.argmax(p))], *map(float, p)) for p in probs]

    async def classify(self, texts: Sequence[str], candidate_labels: Sequence[str] = (), multi_label: bool = False,
                       template: str = "", groups: Sequence[str] = ()) -> list[list[LabelScore]]:
        self.check_texts(texts)
        self._check_labels(candidate_labels, groups, template)
        text_emb = await self.encoder(texts)
        if candidate_labels:
            label_emb = await self._caller_labels(list(candidate_labels), template or self.template)
            scores = zero_shot.scores(text_emb, label_emb, logit_scale=self.logit_scale, multi_label=multi_label,
                                      threshold=self.threshold)
            names, label_groups = list(candidate_labels), None
        else:
            logits = (await self.labels.infer({"embeddings": text_emb.astype(np.float32)}))["logits"]
            cols = [i for i, g in enumerate(self.builtin_groups) if not groups or g in groups]
            names = [self.builtin_names[i] for i in cols]
            label_groups = [self.builtin_groups[i] for i in cols]
            scores = zero_shot.scores_from_logits(logits[:, cols], logit_scale=self.logit_scale,
                                                  multi_label=multi_label, threshold=self.threshold,
                                                  groups=label_groups)
        return [[LabelScore(n, s if math.isfinite(s) else 0.0, g) for n, s, g in zero_shot.ranked(row, names, label_groups)]
                for row in scores]

    async def _caller_labels(self, labels: list[str], template: str) -> np.ndarray:
        """Embeddings of the filled-in hypotheses, cached (callers reuse their label sets)."""
        keys = zero_shot.hypotheses(labels, template)
        # what the cache holds now is taken before the await: another request may evict it meanwhile
        found = {k: self._label_cache[k] for k in dict.fromkeys(keys) if k in self._label_cache}
        missing = [k for k in dict.fromkeys(keys) if k not in found]
        if missing:
            found.update(zip(missing, await self.encoder(missing)))
        for k in keys:
            self._label_cache[k] = found[k]
            self._label_cache.move_to_end(k)
        while len(self._label_cache) > self.settings.label_cache_size:
            self._label_cache.popitem(last=False)
        return np.stack([found[k] for k in keys])

    async def entities(self, texts: Sequence[str]) -> list[list[ner.Entity]]:
        s = self.settings
        self.check_texts(texts, max_chars=s.ner_max_text_chars, max_total_chars=s.ner_max_request_chars)
        return await self.ner(texts)
