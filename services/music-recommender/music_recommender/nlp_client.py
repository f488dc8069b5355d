"""The call to nlp-analysis's EmbedText: query texts and new tracks' descriptions become content vectors there,
with the same text-encoder model the catalog's vectors were built with."""

from __future__ import annotations

from typing import Sequence

import grpc
import numpy as np

from maas.nlp.v1 import nlp_pb2, nlp_pb2_grpc
from maas_runtime.errors import InvalidArgument, Unavailable
from maas_runtime.interceptors import INTERNAL_TOKEN


CHUNK = 32  # texts per EmbedText call (nlp-analysis takes up to NLP_MAX_TEXTS, 64 by default)


class NlpEmbedder:
    def __init__(self, address: str, timeout_s: float, internal_token: str | None = None) -> None:
        self.address = address
        self.timeout_s = timeout_s
        # the suite's shared secret between hops, when nlp-analysis asks for it (ServerSettings.internal_token)
        self.metadata = ((INTERNAL_TOKEN, internal_token),) if internal_token else ()
        self.channel = grpc.aio.insecure_channel(address)
        self.stub = nlp_pb2_grpc.NlpAnalysisStub(self.channel)

    async def __call__(self, texts: Sequence[str], field: str = "query_text") -> np.ndarray:
        """One vector per text (in chunks under nlp-analysis's per-request limit). ``field`` names the request
        field the texts came from, for the INVALID_ARGUMENT nlp-analysis may answer (e.g. a text too long)."""
        out = []
        for i in range(0, len(texts), CHUNK):
            chunk = list(texts[i:i + CHUNK])
            try:
                reply = await self.stub.EmbedText(nlp_pb2.EmbedTextRequest(texts=chunk), timeout=self.timeout_s,
                                                  metadata=self.metadata)
            except grpc.aio.AioRpcError as e:
                if e.code() == grpc.StatusCode.INVALID_ARGUMENT:
                    raise InvalidArgument(field, f"rejected by nlp-analysis: {e.details()}") from e
                raise Unavailable(f"nlp-analysis (EmbedText at {self.address}) failed: {e.code().name}: "
                                  f"{e.details()}") from e
            out.append(np.array([list(v.values) for v in reply.embeddings], dtype=np.float32).reshape(len(chunk), -1))
        return np.concatenate(out)

    async def close(self) -> None:
        await self.channel.close()
