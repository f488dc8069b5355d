"""Zero-shot text classification on top of unit-length sentence embeddings: the one place the math lives.

A label is represented by a unit vector in the encoder's space: for a caller label, the embedding of the
hypothesis ``template`` filled with the label ("This is about {}." -> "This is about jazz.");
for a built-in label, the normalised mean of the embeddings of several descriptions of it
(:func:`label_embedding`), centred within its group (:func:`center_groups`). A text is scored against
the labels by cosine similarity, scaled by ``logit_scale`` into logits, then either

* ``multi_label=False``: softmax over the labels (over each group separately for the built-in moods and
  genres, :func:`grouped_scores`), so the scores of a text sum to 1 (per group); or
* ``multi_label=True``: each label on its own, ``sigmoid(logit_scale * (cosine - threshold))``, so a label
  scores above 0.5 exactly when its cosine is above ``threshold``, independently of the other labels.

Both the nlp-analysis service and the ``creative-labels`` model recipe call these functions, so the scores
the service returns are the scores the recipe evaluated. Pure numpy: no gRPC, no torch.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

# Chosen on the dev half of the creative-labels evaluation set (lowest cross-entropy of nine candidates,
# "This text is about {}." included); the creative-labels manifest carries it as zero_shot.template.
DEFAULT_TEMPLATE = "This is about {}."
PLACEHOLDER = "{}"


def hypothesis(template: str, label: str) -> str:
    """The template with its ``{}`` replaced by the label (plain replacement: other braces are kept)."""
    if PLACEHOLDER not in template:
        raise ValueError(f"hypothesis template must contain {PLACEHOLDER!r}: {template!r}")
    return template.replace(PLACEHOLDER, label)


def hypotheses(labels: Sequence[str], template: str = DEFAULT_TEMPLATE) -> list[str]:
    return [hypothesis(template or DEFAULT_TEMPLATE, label) for label in labels]


def normalize(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """L2-normalise along ``axis``; zero vectors raise (they have no direction to compare)."""
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    if np.any(norm == 0) or not np.all(np.isfinite(norm)):
        raise ValueError("cannot normalise a zero or non-finite vector")
    return x / norm


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    if z.shape[axis] == 0:
        return z.astype(np.float32)
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Overflow-free logistic function."""
    return (0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))).astype(np.float32)


def cosine(text_emb: np.ndarray, label_emb: np.ndarray) -> np.ndarray:
    """[N, D] x [L, D] -> [N, L] dot products (cosines, since both sides are unit-norm)."""
    t = np.atleast_2d(np.asarray(text_emb, dtype=np.float32))
    lab = np.asarray(label_emb, dtype=np.float32).reshape(-1, t.shape[1])
    return t @ lab.T


def scores_from_logits(logits: np.ndarray, *, logit_scale: float, multi_label: bool, threshold: float,
                       groups: Sequence[str] | None = None) -> np.ndarray:
    """Scores from ``logit_scale * cosine`` logits (what the creative-labels ONNX head outputs).

    ``groups`` (one name per label column) makes the softmax run within each group separately; it has no
    effect on multi-label scores, which are per label anyway.
    """
    z = np.atleast_2d(np.asarray(logits, dtype=np.float64))
    if multi_label:
        return sigmoid(z - logit_scale * threshold)
    if groups is None:
        return softmax(z, axis=1)
    groups = list(groups)
    if len(groups) != z.shape[1]:
        raise ValueError(f"{len(groups)} group names for {z.shape[1]} labels")
    out = np.empty(z.shape, dtype=np.float32)
    for g in dict.fromkeys(groups):  # first-seen order, each group once
        cols = [i for i, name in enumerate(groups) if name == g]
        out[:, cols] = softmax(z[:, cols], axis=1)
    return out


def scores(text_emb: np.ndarray, label_emb: np.ndarray, *, logit_scale: float, multi_label: bool,
           threshold: float) -> np.ndarray:
    """[N, D] texts x [L, D] labels (both unit-norm) -> [N, L] scores.

    multi_label=False: softmax over the labels of ``logit_scale * cosine`` (rows sum to 1).
    multi_label=True: ``sigmoid(logit_scale * (cosine - threshold))`` per label, independent of the others.
    """
    logits = logit_scale * cosine(text_emb, label_emb)
    return scores_from_logits(logits, logit_scale=logit_scale, multi_label=multi_label, threshold=threshold)


def grouped_scores(text_emb: np.ndarray, label_emb: np.ndarray, groups: Sequence[str], *, logit_scale: float,
                   multi_label: bool, threshold: float) -> np.ndarray:
    """Like :func:`scores` for a label set made of groups (the built-in moods and genres).

    ``groups[j]`` names the group of label row ``j``. multi_label=False: a softmax within each group, so each
    text gets one distribution per group (each sums to 1). multi_label=True: the same per-label sigmoid as
    :func:`scores`.
    """
    logits = logit_scale * cosine(text_emb, label_emb)
    return scores_from_logits(logits, logit_scale=logit_scale, multi_label=multi_label, threshold=threshold,
                              groups=groups)


def label_embedding(embed: Callable[[list[str]], np.ndarray], prompts: list[str]) -> np.ndarray:
    """One label's vector: the normalised mean of the (unit-norm) embeddings of several prompts for it.

    ``embed`` maps a list of texts to an [n, D] array of sentence embeddings.
    """
    prompts = list(prompts)
    if not prompts:
        raise ValueError("a label needs at least one prompt")
    emb = normalize(np.asarray(embed(prompts), dtype=np.float32).reshape(len(prompts), -1))
    return normalize(emb.mean(axis=0))


def center_groups(label_emb: np.ndarray, groups: Sequence[str]) -> np.ndarray:
    """Subtract each group's mean label vector from its labels, then re-normalise.

    Descriptions of moods (or of genres) share a large common component ("this is music"), so every music
    text sits close to every such label and multi-label scores light up the whole group. Removing the group
    mean keeps what tells the labels apart; a softmax within the group is nearly unchanged by it.
    """
    emb = np.asarray(label_emb, dtype=np.float32)
    groups = list(groups)
    if len(groups) != emb.shape[0]:
        raise ValueError(f"{len(groups)} group names for {emb.shape[0]} labels")
    out = emb.copy()
    for g in dict.fromkeys(groups):
        rows = [i for i, name in enumerate(groups) if name == g]
        if len(rows) < 2:
            raise ValueError(f"group {g!r} needs at least two labels to be centred")
        out[rows] = emb[rows] - emb[rows].mean(axis=0, keepdims=True)
    return normalize(out)


def ranked(row: np.ndarray, labels: Sequence[str], groups: Sequence[str] | None = None
           ) -> list[tuple[str, float, str]]:
    """One text's scores as (label, score, group) triples, best first (ties keep label order)."""
    row = np.asarray(row, dtype=np.float32).reshape(-1)
    if len(labels) != row.shape[0]:
        raise ValueError(f"{len(labels)} labels for {row.shape[0]} scores")
    groups = list(groups) if groups is not None else [""] * len(labels)
    order = np.argsort(-row, kind="stable")
    return [(labels[i], float(row[i]), groups[i]) for i in order]
