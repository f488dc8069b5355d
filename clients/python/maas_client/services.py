"""One small class per gRPC service, shared by the blocking and the asyncio client.

A method builds the request and hands it to the client's invoker with the generated stub's method; the
invoker (blocking or asyncio) does the calling, so each class is written once: with ``Client`` a method
returns the response, with ``AsyncClient`` a coroutine of it. Responses are the generated messages.

A new service slots in as a class here (its stub, one method per RPC) and a line in ``SERVICES``.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from maas.nlp.v1 import nlp_pb2, nlp_pb2_grpc


def _texts(texts: str | Iterable[str]) -> list[str]:
    return [texts] if isinstance(texts, str) else list(texts)


class ServiceClient:
    """Base: the generated stub on the client's channel, and the client's invoker."""

    stub: Any = None

    def __init__(self, channel: Any, invoke: Any) -> None:
        self._stub = self.stub(channel)
        self._invoke = invoke

    def _unary(self, rpc: str, request: Any, **options: Any) -> Any:
        return self._invoke.unary(getattr(self._stub, rpc), request, **options)

    def _stream(self, rpc: str, request: Any, **options: Any) -> Any:
        return self._invoke.stream(getattr(self._stub, rpc), request, **options)


class NlpAnalysis(ServiceClient):
    """``maas.nlp.v1.NlpAnalysis``: sentiment, classification, embeddings, entities. Every method takes one text
    or a list, and the call options ``timeout``, ``request_id``, ``metadata``, ``retry``."""

    stub = nlp_pb2_grpc.NlpAnalysisStub
    Sentiment = nlp_pb2.Sentiment

    def analyze_sentiment(self, texts: str | Iterable[str], **options: Any) -> Any:
        return self._unary("AnalyzeSentiment", nlp_pb2.AnalyzeSentimentRequest(texts=_texts(texts)), **options)

    def classify(self, texts: str | Iterable[str], labels: Sequence[str] = (), *, multi_label: bool = False,
                 template: str = "", groups: Sequence[str] = (), **options: Any) -> Any:
        """Zero-shot over ``labels``, or the built-in moods and genres (``groups`` to pick) when none are given."""
        request = nlp_pb2.ClassifyTextRequest(texts=_texts(texts), candidate_labels=list(labels),
                                              multi_label=multi_label, hypothesis_template=template,
                                              label_groups=list(groups))
        return self._unary("ClassifyText", request, **options)

    def embed(self, texts: str | Iterable[str], **options: Any) -> Any:
        return self._unary("EmbedText", nlp_pb2.EmbedTextRequest(texts=_texts(texts)), **options)

    def extract_entities(self, texts: str | Iterable[str], **options: Any) -> Any:
        return self._unary("ExtractEntities", nlp_pb2.ExtractEntitiesRequest(texts=_texts(texts)), **options)


# client attribute -> service class (client.nlp.embed(...)); the other services of the suite join here
SERVICES: dict[str, type[ServiceClient]] = {
    "nlp": NlpAnalysis,
}
