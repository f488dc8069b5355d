"""Next-token choice from logits: repetition penalty, temperature, top-k, top-p, a per-request seeded RNG.

The order and semantics are those of Hugging Face ``generate`` (repetition penalty, then temperature, then
top-k, then top-p keeping the smallest most-likely set whose mass reaches ``top_p``). ``temperature == 0``
is greedy (argmax after the repetition penalty). Each request owns a PCG64 generator seeded from its
``seed`` and draws exactly one uniform number per sampled token, so the same seed, settings and logits give
the same tokens whatever else the server is doing.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

# top-p looks for the nucleus among the tokens within a margin (in temperature-scaled logits) of the most likely
# one, the margins tried in turn until those tokens hold the mass asked for (a comparison each, no sort of the
# vocabulary: a confident model's nucleus is a handful of tokens within the first), then among all tokens
_MARGINS = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 16
    temperature: float = 1.0  # 0: greedy
    top_k: int = 0  # 0: off
    top_p: float = 1.0  # (0, 1]; 1: off
    repetition_penalty: float = 1.0  # > 0; 1: off
    seed: int | None = None  # None: a random seed (reported on the Generation)
    stop_token_ids: tuple[int, ...] = ()  # end-of-sequence tokens: finish with reason EOS

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise ValueError("temperature must be a finite number >= 0")
        if self.top_k < 0:
            raise ValueError("top_k must be >= 0")
        if not (0 < self.top_p <= 1):
            raise ValueError("top_p must be in (0, 1]")
        if not (math.isfinite(self.repetition_penalty) and self.repetition_penalty > 0):
            raise ValueError("repetition_penalty must be a finite number > 0")


class LogitsProcessor(Protocol):
    """Per-request constraint on the next token (e.g. a grammar): ``__call__`` returns the logits to sample from
    (disallowed tokens at -inf), ``advance`` is told the token chosen. Runs on the executor thread."""

    def __call__(self, logits: np.ndarray) -> np.ndarray: ...

    def advance(self, token: int) -> None: ...


def log_softmax(logits: np.ndarray) -> np.ndarray:
    top = logits.max(axis=-1, keepdims=True)
    shifted = logits - top
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _logsumexp(x: np.ndarray) -> float:
    top = float(x.max())
    return top + math.log(float(np.exp(x - top).sum()))


class Sampler:
    """One request's sampling state: its RNG and the tokens seen so far (for the repetition penalty)."""

    def __init__(self, params: SamplingParams, vocab_size: int, context: Sequence[int] = (),
                 processor: LogitsProcessor | None = None) -> None:
        self.params = params
        self.processor = processor
        self.seed = int(params.seed) if params.seed is not None else secrets.randbits(63)
        self.rng = np.random.Generator(np.random.PCG64(self.seed))
        self.seen: np.ndarray | None = None
        if params.repetition_penalty != 1.0:
            self.seen = np.zeros(vocab_size, dtype=bool)
            ids = np.asarray(context, dtype=np.int64)
            self.seen[ids[(ids >= 0) & (ids < vocab_size)]] = True

    def __call__(self, logits: np.ndarray) -> tuple[int, float]:
        """Choose the next token from one row of logits [V]; returns (token, log-probability under the model)."""
        logits = np.asarray(logits, dtype=np.float32)
        token = self._choose(logits if self.processor is None else self.processor(logits))
        if self.seen is not None:
            self.seen[token] = True
        if self.processor is not None:
            self.processor.advance(token)
        return token, float(logits[token]) - _logsumexp(logits)

    def _choose(self, logits: np.ndarray) -> int:
        p = self.params
        x = logits
        if self.seen is not None and self.seen.any():
            x = logits.copy()
            idx = np.flatnonzero(self.seen)
            v = x[idx]
            x[idx] = np.where(v > 0, v / p.repetition_penalty, v * p.repetition_penalty)
        if p.temperature == 0:
            return int(np.argmax(x))
        x = x / np.float32(p.temperature)
        candidates: np.ndarray | None = None
        if 0 < p.top_k < x.shape[0]:
            candidates = np.argpartition(x, -p.top_k)[-p.top_k:]
        if p.top_p < 1.0:
            candidates = self._nucleus(x, candidates)
        if candidates is None:
            probs = np.exp(x - x.max())
            return self._draw(np.arange(x.shape[0]), probs)
        values = x[candidates]
        return self._draw(candidates, np.exp(values - values.max()))

    def _nucleus(self, x: np.ndarray, candidates: np.ndarray | None) -> np.ndarray:
        """The smallest most-likely subset (of the candidates) whose probability reaches top_p."""
        top_p = self.params.top_p
        if candidates is None:
            top = x.max()
            weights = np.exp(x - top)  # unnormalised probabilities: one pass over the vocabulary
            need = top_p * float(weights.sum(dtype=np.float64))
            for margin in _MARGINS:
                candidates = np.flatnonzero(x >= top - margin)
                # enough mass: the nucleus is among them (every other token is less likely than each of them)
                if float(weights[candidates].sum(dtype=np.float64)) >= need:
                    weights = weights[candidates]
                    break
            else:
                candidates = np.arange(x.shape[0])
        else:
            values = x[candidates]
            weights = np.exp(values - values.max())
            need = top_p * float(weights.sum(dtype=np.float64))
        rank = np.argsort(-x[candidates], kind="stable")
        cum = np.cumsum(weights[rank], dtype=np.float64)
        return candidates[rank[: int(np.searchsorted(cum, need)) + 1]]

    def _draw(self, tokens: np.ndarray, weights: np.ndarray) -> int:
        cum = np.cumsum(weights, dtype=np.float64)
        u = self.rng.random() * cum[-1]
        return int(tokens[min(int(np.searchsorted(cum, u, side="right")), len(tokens) - 1)])
