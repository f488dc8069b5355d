"""The hybrid model in plain numpy: collaborative filtering (implicit's ALS), a content taste profile over the
track vectors, a time-decayed popularity prior, and the ONNX graph that blends them into one score.

Used both at build time (fit and evaluate on MovieLens-100k, export the scorer) and at serve time (retrain from
the store, fold a user in from their latest interactions). Nothing here imports gRPC.

Score of item i for a request b (all four parts are inner products or a lookup, so candidates from an ANN index
are re-scored exactly):

    score = w_cf * <user_factors_b, item_factors_i>      collaborative (ALS)
          + w_taste * <user_taste_b, item_content_i>      content: what the user played, as one vector
          + w_query * <query_b, item_content_i>           content: EmbedText of query_text / seed tracks
          + w_pop * prior_i                               log time-decayed popularity, in [0, 1]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.sparse as sp

COMPONENTS = ("collaborative", "taste", "query", "popularity")
SCORER_INPUTS = ("user_factors", "user_taste", "query", "weights", "item_factors", "item_content", "item_prior")
SCORER_OUTPUTS = ("scores", "contributions")


@dataclass(frozen=True)
class AlsParams:
    factors: int = 64
    regularization: float = 0.05
    alpha: float = 1.0
    iterations: int = 15

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Blend:
    """Component weights and the popularity half-life, tuned on a validation split (see the recipe)."""

    collaborative: float = 1.0
    taste: float = 0.5
    popularity: float = 0.5
    half_life_days: float = 30.0

    def weights(self, query: float = 0.0) -> np.ndarray:
        return np.array([self.collaborative, self.taste, query, self.popularity], dtype=np.float32)

    def as_dict(self) -> dict:
        return asdict(self)


def train_als(matrix: sp.csr_matrix, params: AlsParams, seed: int = 0, threads: int = 1
              ) -> tuple[np.ndarray, np.ndarray]:
    """ALS on a (users x items) confidence matrix; returns (user_factors, item_factors) as float32 arrays."""
    from threadpoolctl import threadpool_limits
    from implicit.cpu.als import AlternatingLeastSquares

    n_users, n_items = matrix.shape
    if matrix.nnz == 0:
        return (np.zeros((n_users, params.factors), np.float32), np.zeros((n_items, params.factors), np.float32))
    model = AlternatingLeastSquares(factors=params.factors, regularization=params.regularization,
                                    alpha=params.alpha, iterations=params.iterations, random_state=seed,
                                    num_threads=threads)
    with threadpool_limits(1, "blas"):  # implicit's own threads do the work; BLAS threads would oversubscribe
        model.fit(matrix.tocsr().astype(np.float32), show_progress=False)
    return np.ascontiguousarray(model.user_factors, np.float32), np.ascontiguousarray(model.item_factors, np.float32)


def gram(item_factors: np.ndarray) -> np.ndarray:
    return (item_factors.T @ item_factors).astype(np.float64)


def fold_in(item_factors: np.ndarray, item_gram: np.ndarray, params: AlsParams, items: np.ndarray,
            confidence: np.ndarray) -> np.ndarray:
    """The ALS user step for one user (what a retrain would give them), from their latest interactions."""
    f = item_factors.shape[1]
    if len(items) == 0 or not np.any(item_factors[items]):
        return np.zeros(f, np.float32)
    y = item_factors[items].astype(np.float64)
    c = params.alpha * confidence.astype(np.float64)
    a = item_gram + params.regularization * np.eye(f) + (y.T * (c - 1.0)) @ y
    b = (y * c[:, None]).sum(0)
    return np.linalg.solve(a, b).astype(np.float32)


def taste(item_content: np.ndarray, items: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """A user's content profile: the confidence-weighted mean of their tracks' vectors, unit length."""
    if len(items) == 0:
        return np.zeros(item_content.shape[1], np.float32)
    v = (item_content[items].astype(np.float32) * confidence[:, None].astype(np.float32)).sum(0)
    n = float(np.linalg.norm(v))
    return (v / n).astype(np.float32) if n > 0 else v.astype(np.float32)


def taste_matrix(item_content: np.ndarray, matrix: sp.csr_matrix) -> np.ndarray:
    v = np.asarray(matrix @ item_content, dtype=np.float32)
    n = np.linalg.norm(v, axis=1, keepdims=True)
    return np.divide(v, n, out=np.zeros_like(v), where=n > 0)


def prior(items: np.ndarray, times: np.ndarray, weights: np.ndarray, now: float, half_life_days: float,
          n_items: int) -> np.ndarray:
    """log(1 + time-decayed interaction mass) per item, scaled to [0, 1]."""
    decay = np.power(0.5, np.maximum(0.0, now - times) / (half_life_days * 86400.0)) if half_life_days > 0 else 1.0
    mass = np.bincount(items, weights=weights * decay, minlength=n_items)[:n_items]
    p = np.log1p(np.maximum(mass, 0.0))
    top = float(p.max()) if len(p) else 0.0
    return (p / top).astype(np.float32) if top > 0 else p.astype(np.float32)


# ------------------------------------------------------------------------------------------------ ONNX scorer


def export_scorer(path: Path, factors: int, content_dim: int) -> None:
    """The blend as an ONNX graph: batched requests [B, .] against candidate items [N, .] → scores [B, N] and the
    weighted per-component contributions [B, N, 4] (the reasons are read from them)."""
    import onnx
    from onnx import TensorProto, helper

    f32 = TensorProto.FLOAT
    inputs = [
        helper.make_tensor_value_info("user_factors", f32, ["batch", factors]),
        helper.make_tensor_value_info("user_taste", f32, ["batch", content_dim]),
        helper.make_tensor_value_info("query", f32, ["batch", content_dim]),
        helper.make_tensor_value_info("weights", f32, ["batch", len(COMPONENTS)]),
        helper.make_tensor_value_info("item_factors", f32, ["items", factors]),
        helper.make_tensor_value_info("item_content", f32, ["items", content_dim]),
        helper.make_tensor_value_info("item_prior", f32, ["items"]),
    ]
    outputs = [helper.make_tensor_value_info("scores", f32, ["batch", "items"]),
               helper.make_tensor_value_info("contributions", f32, ["batch", "items", len(COMPONENTS)])]
    n = helper.make_node
    nodes = [
        n("Gemm", ["user_factors", "item_factors"], ["cf"], transB=1),
        n("Gemm", ["user_taste", "item_content"], ["tst"], transB=1),
        n("Gemm", ["query", "item_content"], ["qry"], transB=1),
        n("Shape", ["cf"], ["bn"]),
        n("Expand", ["item_prior", "bn"], ["pop"]),
        n("Unsqueeze", ["cf", "axis2"], ["cf3"]),
        n("Unsqueeze", ["tst", "axis2"], ["tst3"]),
        n("Unsqueeze", ["qry", "axis2"], ["qry3"]),
        n("Unsqueeze", ["pop", "axis2"], ["pop3"]),
        n("Concat", ["cf3", "tst3", "qry3", "pop3"], ["parts"], axis=2),
        n("Unsqueeze", ["weights", "axis1"], ["w3"]),
        n("Mul", ["parts", "w3"], ["contributions"]),
        n("ReduceSum", ["contributions", "axis2"], ["scores"], keepdims=0),
    ]
    inits = [helper.make_tensor("axis2", TensorProto.INT64, [1], [2]),
             helper.make_tensor("axis1", TensorProto.INT64, [1], [1])]
    graph = helper.make_graph(nodes, "hybrid_scorer", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="maas_modelbuild")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def scorer_contract(factors: int, content_dim: int) -> dict:
    shapes = {"user_factors": [-1, factors], "user_taste": [-1, content_dim], "query": [-1, content_dim],
              "weights": [-1, len(COMPONENTS)], "item_factors": [-1, factors], "item_content": [-1, content_dim],
              "item_prior": [-1]}
    return {"inputs": [{"name": k, "datatype": "FP32", "shape": v} for k, v in shapes.items()],
            "outputs": [{"name": "scores", "datatype": "FP32", "shape": [-1, -1]},
                        {"name": "contributions", "datatype": "FP32", "shape": [-1, -1, len(COMPONENTS)]}]}


# ------------------------------------------------------------------------------------------------ evaluation


def top_k(scores: np.ndarray, k: int, exclude: sp.csr_matrix | None = None) -> np.ndarray:
    """Row-wise top-k item indices (best first), items in ``exclude`` (same shape, nonzero) removed."""
    s = np.array(scores, dtype=np.float32, copy=True)
    if exclude is not None:
        ex = exclude.tocoo()
        s[ex.row, ex.col] = -np.inf
    idx = np.argpartition(-s, kth=min(k, s.shape[1] - 1), axis=1)[:, :k]
    order = np.take_along_axis(s, idx, 1).argsort(1)[:, ::-1]
    return np.take_along_axis(idx, order, 1)


def recall_ndcg(ranked: np.ndarray, relevant: Sequence[set[int]], k: int = 10) -> tuple[float, float]:
    """Mean Recall@k (hits / |relevant|) and NDCG@k (binary gains) over users with something relevant."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    recalls, ndcgs = [], []
    for row, rel in zip(ranked, relevant):
        if not rel:
            continue
        hits = np.array([i in rel for i in row[:k]], dtype=np.float64)
        recalls.append(hits.sum() / len(rel))
        ideal = discounts[:min(len(rel), k)].sum()
        ndcgs.append(float((hits * discounts[:len(hits)]).sum() / ideal))
    return float(np.mean(recalls)), float(np.mean(ndcgs))


def half_life_grid() -> list[float]:
    return [3.0, 14.0, 60.0, 0.0]  # 0: no decay (all-time counts)
