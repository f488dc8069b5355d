"""Approximate nearest-neighbour candidates for large catalogs (faiss IVF, inner product).

Each item is indexed as [item_factors, content @ P]: P projects the content vectors onto their top principal
directions, so one inner-product search with [w_cf * user_factors, (w_taste * taste + w_query * query) @ P]
approximates the blend's first three terms. The candidates are then re-scored exactly by the ONNX scorer with the
full vectors (plus the popularity prior, whose top items are always added as candidates). Below
``ann_min_items`` the scorer simply sees every item.
"""

from __future__ import annotations

import numpy as np


class AnnIndex:
    def __init__(self, item_factors: np.ndarray, content: np.ndarray, dims: int = 64, nprobe: int = 24,
                 seed: int = 0, threads: int = 2) -> None:
        import faiss

        faiss.omp_set_num_threads(threads)
        n = len(item_factors)
        rng = np.random.default_rng(seed)
        sample = content[rng.choice(n, size=min(n, 20_000), replace=False)].astype(np.float32)
        mean = sample.mean(0)
        # principal directions of the content vectors (uncentred inner products are what we preserve)
        _, _, vt = np.linalg.svd(sample - mean, full_matrices=False)
        self.projection = np.ascontiguousarray(vt[:min(dims, vt.shape[0])].T, np.float32)  # [C, dims]
        vectors = self.item_vectors(item_factors, content)
        d = vectors.shape[1]
        nlist = int(max(16, min(4096, 2 * np.sqrt(n))))
        quantizer = faiss.IndexFlatIP(d)
        self.index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        train = vectors[rng.choice(n, size=min(n, 40 * nlist), replace=False)]
        self.index.train(train)
        for i in range(0, n, 200_000):
            self.index.add(vectors[i:i + 200_000])
        self.index.nprobe = nprobe
        self.size = n

    def item_vectors(self, item_factors: np.ndarray, content: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(item_factors), 200_000):  # bounded temporary memory
            out.append(np.concatenate([item_factors[i:i + 200_000].astype(np.float32),
                                       content[i:i + 200_000].astype(np.float32) @ self.projection], axis=1))
        return np.ascontiguousarray(np.concatenate(out), np.float32)

    def search(self, factors: np.ndarray, content: np.ndarray, n: int) -> np.ndarray:
        """Candidate item rows for one request vector pair (factors part, content part)."""
        q = np.concatenate([factors.astype(np.float32), content.astype(np.float32) @ self.projection])[None, :]
        _, ids = self.index.search(np.ascontiguousarray(q), n)
        ids = ids[0]
        return ids[(ids >= 0) & (ids < self.size)]
