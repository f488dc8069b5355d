"""Named entities: word tokens with exact offsets, casing features, overlapping windows, BIO decoding.

Plain Python/numpy (no gRPC, no torch): the model build (``maas_modelbuild.recipes.ner``) imports this
same module, so training, evaluation and serving split words, build features and decode identically.

Offsets are Python ``str`` indices, i.e. Unicode code points of the caller's text as received: nothing
is normalised before words are found, so emoji, accents or CJK characters before an entity do not shift
it, and ``text[start:end]`` is always the entity's surface.

Model contract (``model.onnx``): inputs ``input_ids``, ``attention_mask``, ``case_ids`` (int64, batch x
pieces); output ``probabilities`` (float32, batch x pieces x len(TAGS)), a softmax over BIO tags. The word
pieces are the uncased MiniLM vocabulary; ``case_ids`` gives the model back the casing the vocabulary
throws away (one id per piece: the word's casing class and whether the piece starts the word).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

# OntoNotes 5 entity types, the set spaCy's English pipelines predict.
LABELS = ("PERSON", "NORP", "FAC", "ORG", "GPE", "LOC", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW", "LANGUAGE",
          "DATE", "TIME", "PERCENT", "MONEY", "QUANTITY", "ORDINAL", "CARDINAL")
TAGS = ("O",) + tuple(f"{p}-{lab}" for lab in LABELS for p in ("B", "I"))
TAG_INDEX = {t: i for i, t in enumerate(TAGS)}

_MARK = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"  # combining marks stay in their word
_WORD = rf"[^\W_][^\W_{_MARK}]*(?:[{_MARK}]+[^\W_]*)*"
TOKEN_RE = re.compile(
    r"https?://\S+|www\.\S+"  # URLs
    r"|[@#][^\W_]\w*"  # @mentions and #hashtags: never entities here (one token, tagged O)
    r"|(?:[^\W\d_]\.){2,}"  # U.S., a.m.
    r"|\d+(?:[.,:]\d+)+"  # 2,900  4.6  10:30
    rf"|{_WORD}(?:['\u2019](?![sS]\b){_WORD})*"  # words, O'Brien, don't (but Bach's -> Bach + 's)
    r"|['\u2019][sS]\b"  # possessive 's
    r"|\S",  # anything else, one code point at a time (punctuation, symbols, emoji)
)

# Casing class of a word; each piece gets 1 + 2 * class + (0 if it starts the word else 1); 0 is padding.
LOWER, TITLE, UPPER, MIXED, DIGITS, SYMBOL, UNCASED = range(7)
CASE_CLASSES = 7
CASE_VOCAB = 1 + 2 * CASE_CLASSES


def tokenize(text: str) -> list[tuple[int, int]]:
    """Word tokens as (start, end) code-point offsets into ``text``."""
    return [m.span() for m in TOKEN_RE.finditer(text)]


def case_class(word: str) -> int:
    letters = [c for c in word if c.isalpha()]
    if not letters:
        return DIGITS if any(c.isdigit() for c in word) else SYMBOL
    cased = [c for c in letters if c.isupper() or c.islower()]
    if not cased:
        return UNCASED
    if all(c.islower() for c in cased):
        return LOWER
    if all(c.isupper() for c in cased):
        return UPPER if len(cased) > 1 else TITLE
    if cased[0].isupper() and all(c.islower() for c in cased[1:]):
        return TITLE
    return MIXED


@dataclass(frozen=True)
class Entity:
    label: str
    start: int  # code points
    end: int
    text: str
    score: float


@dataclass
class Window:
    """One model input: a run of whole words, as pieces framed by [CLS] ... [SEP]."""

    doc: int  # index of the text in the request
    first_word: int  # index of its first word in the text
    word_pos: np.ndarray  # position (in pieces) of each word's first piece; -1 for words with no pieces
    input_ids: np.ndarray  # int64 [n]
    case_ids: np.ndarray  # int64 [n]


@dataclass
class Document:
    text: str
    spans: list[tuple[int, int]]
    windows: list[Window]


class Encoder:
    """Texts -> words -> pieces -> overlapping windows of at most ``max_pieces`` (special tokens included)."""

    def __init__(self, tokenizer: object, max_pieces: int = 128, overlap: int = 32) -> None:
        if max_pieces < 8 or not 0 <= overlap <= (max_pieces - 2) // 2:
            raise ValueError("need max_pieces >= 8 and 0 <= overlap <= (max_pieces - 2) / 2")
        # a tokenizers.Tokenizer (uncased WordPiece), used without special tokens on whole documents: the
        # truncation and padding a tokenizer.json may carry (MiniLM's truncates at 128) are switched off
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self.tokenizer = tokenizer
        self.max_pieces = max_pieces
        self.overlap = overlap
        self.cls_id = tokenizer.token_to_id("[CLS]")
        self.sep_id = tokenizer.token_to_id("[SEP]")
        self.unk_id = tokenizer.token_to_id("[UNK]")

    def pieces(self, words: list[str]) -> list[list[int]]:
        """Word-piece ids of each word (an empty list for a word the normaliser removes entirely)."""
        if not words:
            return []
        enc = self.tokenizer.encode(words, is_pretokenized=True, add_special_tokens=False)
        out: list[list[int]] = [[] for _ in words]
        for pid, wid in zip(enc.ids, enc.word_ids):
            if wid is not None:
                out[wid].append(pid)
        return out

    def document(self, text: str, doc: int = 0) -> Document:
        spans = tokenize(text)
        words = [text[s:e] for s, e in spans]
        pieces = self.pieces(words)
        cases = [case_class(w) for w in words]
        budget = self.max_pieces - 2
        # long words are cut (only the first piece is read back); a word never straddles windows
        pieces = [p[:budget] for p in pieces]
        counts = [len(p) for p in pieces]
        windows = []
        start, n = 0, len(words)
        while start < n:
            end, used = start, 0
            while end < n and used + counts[end] <= budget:
                used += counts[end]
                end += 1
            windows.append(self._window(doc, start, end, pieces, cases))
            if end >= n:
                break
            # the next window starts ``overlap`` pieces back, always after this one's start
            back, nxt = 0, end
            while nxt - 1 > start and back + counts[nxt - 1] <= self.overlap:
                nxt -= 1
                back += counts[nxt]
            start = nxt
        return Document(text, spans, windows)

    def _window(self, doc: int, start: int, end: int, pieces: list[list[int]], cases: list[int]) -> Window:
        ids, case_ids, pos = [self.cls_id], [0], []
        for w in range(start, end):
            p = pieces[w]
            pos.append(len(ids) if p else -1)
            ids.extend(p)
            case_ids.extend(1 + 2 * cases[w] + (0 if k == 0 else 1) for k in range(len(p)))
        ids.append(self.sep_id)
        case_ids.append(0)
        return Window(doc, start, np.array(pos, dtype=np.int64), np.array(ids, dtype=np.int64),
                      np.array(case_ids, dtype=np.int64))


def pad_batch(windows: Sequence[Window]) -> dict[str, np.ndarray]:
    width = max(len(w.input_ids) for w in windows)
    ids = np.zeros((len(windows), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    case = np.zeros_like(ids)
    for r, w in enumerate(windows):
        n = len(w.input_ids)
        ids[r, :n] = w.input_ids
        mask[r, :n] = 1
        case[r, :n] = w.case_ids
    return {"input_ids": ids, "attention_mask": mask, "case_ids": case}


def word_probabilities(doc: Document, window_probs: Sequence[np.ndarray]) -> np.ndarray:
    """Per-word tag probabilities [n_words, n_tags], each word read from the window where it has the most
    context on both sides (so an entity cut by one window's edge is read from the next, where it is whole).
    Words with no pieces (a lone variation selector, a control character) are certain O."""
    n_words = len(doc.spans)
    n_tags = window_probs[0].shape[-1] if len(window_probs) else len(TAGS)
    out = np.zeros((n_words, n_tags), dtype=np.float32)
    out[:, 0] = 1.0
    best = np.full(n_words, -1, dtype=np.int64)
    for win, probs in zip(doc.windows, window_probs):
        length = len(win.input_ids)
        for k, pos in enumerate(win.word_pos):
            if pos < 0:
                continue
            w = win.first_word + k
            context = min(pos, length - 1 - pos)
            if context > best[w]:
                best[w] = context
                out[w] = probs[pos]
    return out


def _transitions() -> tuple[np.ndarray, np.ndarray]:
    """Allowed BIO moves as additive log-scores (0 or -inf): I-X only after B-X or I-X."""
    n = len(TAGS)
    trans = np.zeros((n, n), dtype=np.float64)
    start = np.zeros(n, dtype=np.float64)
    for j, tag in enumerate(TAGS):
        if tag.startswith("I-"):
            start[j] = -np.inf
            for i, prev in enumerate(TAGS):
                if prev[2:] != tag[2:] or prev == "O":
                    trans[i, j] = -np.inf
    return trans, start


_TRANS, _START = _transitions()


def viterbi(probs: np.ndarray) -> np.ndarray:
    """The most probable valid BIO tag sequence under per-word probabilities."""
    n = len(probs)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    logp = np.log(np.clip(probs.astype(np.float64), 1e-12, 1.0))
    back = np.zeros((n, logp.shape[1]), dtype=np.int64)
    score = logp[0] + _START
    for t in range(1, n):
        cand = score[:, None] + _TRANS
        back[t] = cand.argmax(0)
        score = cand[back[t], np.arange(cand.shape[1])] + logp[t]
    tags = np.zeros(n, dtype=np.int64)
    tags[-1] = int(score.argmax())
    for t in range(n - 1, 0, -1):
        tags[t - 1] = back[t, tags[t]]
    return tags


def decode(text: str, spans: Sequence[tuple[int, int]], probs: np.ndarray) -> list[Entity]:
    """Entities from per-word probabilities: constrained Viterbi, then spans from first to last word.
    The score is the mean probability of the chosen tags over the entity's words."""
    tags = viterbi(probs)
    entities: list[Entity] = []
    i, n = 0, len(tags)
    while i < n:
        tag = TAGS[tags[i]]
        if tag == "O":
            i += 1
            continue
        label = tag[2:]
        j = i + 1
        while j < n and TAGS[tags[j]] == f"I-{label}":
            j += 1
        start, end = spans[i][0], spans[j - 1][1]
        score = float(np.mean([probs[k, tags[k]] for k in range(i, j)]))
        entities.append(Entity(label, start, end, text[start:end], score))
        i = j
    return entities


def bio_tags(spans: Sequence[tuple[int, int]], entities: Iterable[tuple[int, int, str]]) -> tuple[list[int], int]:
    """Word-level BIO tag ids for character-level entities (training data). An entity whose edges do
    not fall on word edges cannot be represented: it is left out (and counted)."""
    tags = [0] * len(spans)
    starts = {s: i for i, (s, _) in enumerate(spans)}
    ends = {e: i for i, (_, e) in enumerate(spans)}
    dropped = 0
    for s, e, label in sorted(entities):
        i, j = starts.get(s), ends.get(e)
        if i is None or j is None or j < i or any(tags[k] for k in range(i, j + 1)):
            dropped += 1
            continue
        tags[i] = TAG_INDEX[f"B-{label}"]
        for k in range(i + 1, j + 1):
            tags[k] = TAG_INDEX[f"I-{label}"]
    return tags, dropped


def prf(gold: Iterable[tuple[int, int, int, str]], predicted: Iterable[tuple[int, int, int, str]],
        labels: Sequence[str] = LABELS) -> dict:
    """Entity-level exact-match precision/recall/F1 over (doc, start, end, label) tuples, per label and
    overall (micro)."""
    g, p = set(gold), set(predicted)

    def score(gs: set, ps: set) -> dict:
        tp = len(gs & ps)
        prec = tp / len(ps) if ps else 0.0
        rec = tp / len(gs) if gs else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        return {"precision": round(prec, 4), "recall": round(rec, 4), "f1": round(f1, 4), "support": len(gs),
                "predicted": len(ps)}

    out = {"overall": score(g, p), "per_label": {}}
    for lab in labels:
        gs = {x for x in g if x[3] == lab}
        ps = {x for x in p if x[3] == lab}
        if gs or ps:
            out["per_label"][lab] = score(gs, ps)
    return out
