"""One small class per gRPC service, shared by the blocking and the asyncio client.

A method builds the request and hands it to the client's invoker with the generated stub's method; the
invoker (blocking or asyncio) does the calling, so each class is written once: with ``Client`` a method
returns the response, with ``AsyncClient`` a coroutine of it. A streaming method returns an iterator of the
responses (``for event in ...``) with ``Client``, an async iterator (``async for event in ...``) with
``AsyncClient``. Responses are the generated messages.

Every method takes the call options ``timeout``, ``request_id``, ``metadata``, ``retry`` as keywords.

A new service slots in as a class here (its stub, one method per RPC) and a line in ``SERVICES``.
"""

from __future__ import annotations

import uuid
from typing import Any, Iterable, Mapping, Sequence

from google.protobuf.timestamp_pb2 import Timestamp

from inference import grpc_service_pb2 as kserve_pb2
from inference import grpc_service_pb2_grpc as kserve_pb2_grpc
from maas.music.v1 import generator_pb2, generator_pb2_grpc, recommender_pb2, recommender_pb2_grpc
from maas.nlp.v1 import nlp_pb2, nlp_pb2_grpc
from maas.textgen.v1 import textgen_pb2, textgen_pb2_grpc
from maas_client import tensors


def _texts(texts: str | Iterable[str]) -> list[str]:
    return [texts] if isinstance(texts, str) else list(texts)


def _set(**fields: Any) -> dict[str, Any]:
    """The fields that were given (None: leave an optional field unset, so the server's default applies)."""
    return {k: v for k, v in fields.items() if v is not None}


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
    or a list."""

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


# ---- text generation -------------------------------------------------------------------------------------
Message = Any  # textgen_pb2.ChatMessage, {"role": ..., "content": ...} or (role, content)


def chat(messages: Iterable[Message]) -> list[textgen_pb2.ChatMessage]:
    """Chat turns as ChatMessage: from ChatMessage, {"role", "content"} dicts or (role, content) pairs."""
    out = []
    for m in messages:
        if isinstance(m, textgen_pb2.ChatMessage):
            out.append(m)
        elif isinstance(m, Mapping):
            out.append(textgen_pb2.ChatMessage(role=m["role"], content=m["content"]))
        else:
            role, content = m
            out.append(textgen_pb2.ChatMessage(role=role, content=content))
    return out


class TextGenerator(ServiceClient):
    """``maas.textgen.v1.TextGenerator``: a continuation of ``prompt``, or the assistant's reply to ``messages``
    (exactly one of them). Unset sampling settings take the server's defaults; the answer reports the seed."""

    stub = textgen_pb2_grpc.TextGeneratorStub
    FinishReason = textgen_pb2.FinishReason
    ChatMessage = textgen_pb2.ChatMessage

    @staticmethod
    def _request(cls: Any, prompt: str, messages: Iterable[Message], max_new_tokens: int | None,
                 temperature: float | None, top_p: float | None, top_k: int, repetition_penalty: float | None,
                 seed: int | None, stop: str | Sequence[str], logprobs: bool) -> Any:
        return cls(prompt=prompt, messages=chat(messages), top_k=top_k, stop=_texts(stop), logprobs=logprobs,
                   **_set(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                          repetition_penalty=repetition_penalty, seed=seed))

    def generate(self, prompt: str = "", *, messages: Iterable[Message] = (), max_new_tokens: int | None = None,
                 temperature: float | None = None, top_p: float | None = None, top_k: int = 0,
                 repetition_penalty: float | None = None, seed: int | None = None, stop: str | Sequence[str] = (),
                 logprobs: bool = False, **options: Any) -> Any:
        """The whole answer (GenerateResponse: text, finish_reason, token counts, seed)."""
        request = self._request(textgen_pb2.GenerateRequest, prompt, messages, max_new_tokens, temperature, top_p,
                                top_k, repetition_penalty, seed, stop, logprobs)
        return self._unary("Generate", request, **options)

    def generate_stream(self, prompt: str = "", *, messages: Iterable[Message] = (),
                        max_new_tokens: int | None = None, temperature: float | None = None,
                        top_p: float | None = None, top_k: int = 0, repetition_penalty: float | None = None,
                        seed: int | None = None, stop: str | Sequence[str] = (), logprobs: bool = False,
                        **options: Any) -> Any:
        """Text deltas as they are decoded (GenerateStreamResponse events; the last has the finish reason).
        Stop iterating (or break) to cancel the decoding."""
        request = self._request(textgen_pb2.GenerateStreamRequest, prompt, messages, max_new_tokens, temperature,
                                top_p, top_k, repetition_penalty, seed, stop, logprobs)
        return self._stream("GenerateStream", request, **options)

    def count_tokens(self, text: str = "", *, messages: Iterable[Message] = (), **options: Any) -> Any:
        request = textgen_pb2.CountTokensRequest(text=text, messages=chat(messages))
        return self._unary("CountTokens", request, **options)

    def score(self, text: str, **options: Any) -> Any:
        """Every token's log-probability and the text's perplexity."""
        return self._unary("ScoreText", textgen_pb2.ScoreTextRequest(text=text), **options)


# ---- music -----------------------------------------------------------------------------------------------
class MusicGenerator(ServiceClient):
    """``maas.music.v1.MusicGenerator``: a piece in a style ("chorale", "folk", "fiddle", "renaissance"), with
    optional key ("D minor"), tempo, bars, seed, primer MIDI, instrument; ``audio`` / ``piano_roll`` add a WAV
    and a PNG to the answer. Unset fields take the style's defaults; the plan says what was used."""

    stub = generator_pb2_grpc.MusicGeneratorStub
    FinishReason = generator_pb2.FinishReason

    @staticmethod
    def _request(cls: Any, style: str, key: str, tempo_bpm: float | None, bars: int, temperature: float | None,
                 top_p: float | None, seed: int | None, primer_midi: bytes, program: int | None,
                 time_signature: str, chromatic: bool, audio: bool, piano_roll: bool, sample_rate: int) -> Any:
        render = generator_pb2.RenderOptions(audio=audio, piano_roll=piano_roll, sample_rate=sample_rate)
        return cls(style=style, key=key, bars=bars, primer_midi=primer_midi, time_signature=time_signature,
                   chromatic=chromatic, render=render,
                   **_set(tempo_bpm=tempo_bpm, temperature=temperature, top_p=top_p, seed=seed, program=program))

    def compose(self, style: str, *, key: str = "", tempo_bpm: float | None = None, bars: int = 0,
                temperature: float | None = None, top_p: float | None = None, seed: int | None = None,
                primer_midi: bytes = b"", program: int | None = None, time_signature: str = "",
                chromatic: bool = False, audio: bool = False, piano_roll: bool = False, sample_rate: int = 0,
                **options: Any) -> Any:
        """The whole piece (ComposeResponse: midi, notes, plan, and wav / piano_roll_png when asked for)."""
        request = self._request(generator_pb2.ComposeRequest, style, key, tempo_bpm, bars, temperature, top_p, seed,
                                primer_midi, program, time_signature, chromatic, audio, piano_roll, sample_rate)
        return self._unary("Compose", request, **options)

    def compose_stream(self, style: str, *, key: str = "", tempo_bpm: float | None = None, bars: int = 0,
                       temperature: float | None = None, top_p: float | None = None, seed: int | None = None,
                       primer_midi: bytes = b"", program: int | None = None, time_signature: str = "",
                       chromatic: bool = False, audio: bool = False, piano_roll: bool = False,
                       sample_rate: int = 0, **options: Any) -> Any:
        """ComposeStreamResponse events: ``plan`` first, then ``notes`` batches as they are decoded, then ``done``
        (the ComposeResponse). ``event.WhichOneof("event")`` tells which."""
        request = self._request(generator_pb2.ComposeStreamRequest, style, key, tempo_bpm, bars, temperature, top_p,
                                seed, primer_midi, program, time_signature, chromatic, audio, piano_roll, sample_rate)
        return self._stream("ComposeStream", request, **options)

    def list_styles(self, **options: Any) -> Any:
        return self._unary("ListStyles", generator_pb2.ListStylesRequest(), **options)


INTERACTIONS = {"play": recommender_pb2.INTERACTION_TYPE_PLAY, "like": recommender_pb2.INTERACTION_TYPE_LIKE,
                "skip": recommender_pb2.INTERACTION_TYPE_SKIP, "rating": recommender_pb2.INTERACTION_TYPE_RATING}


def interaction(user_id: str, track_id: str, type: str | int = "play", *, rating: float = 0.0,
                event_id: str | None = None, occurred_at: float | None = None) -> recommender_pb2.InteractionEvent:
    """One InteractionEvent: ``type`` "play", "like", "skip" or "rating" (with ``rating`` 0..5); ``event_id`` is
    the retry key (default: a new UUID); ``occurred_at`` in Unix seconds (default: when it is recorded)."""
    kind = INTERACTIONS[type.lower()] if isinstance(type, str) else type
    event = recommender_pb2.InteractionEvent(event_id=event_id or uuid.uuid4().hex, user_id=user_id,
                                             track_id=track_id, type=kind, rating=rating)
    if occurred_at is not None:
        stamp = Timestamp()
        stamp.FromNanoseconds(int(occurred_at * 1e9))
        event.occurred_at.CopyFrom(stamp)
    return event


def _message(cls: Any, value: Any) -> Any:
    """A message from itself or from a dict of its fields (``InteractionEvent`` takes interaction()'s keywords,
    its ``type`` by name)."""
    if isinstance(value, cls):
        return value
    if cls is recommender_pb2.InteractionEvent:
        return interaction(**dict(value))
    return cls(**dict(value))


class MusicRecommender(ServiceClient):
    """``maas.music.v1.MusicRecommender``: tracks for a listener, a sentence, seed tracks or a mix; similar
    tracks; interactions; the catalog. ``filter``: a RecommendationFilter or a dict of its fields
    (``{"collections": ["bach"], "max_part_count": 4}``)."""

    stub = recommender_pb2_grpc.MusicRecommenderStub
    InteractionType = recommender_pb2.InteractionType
    CatalogTrack = recommender_pb2.CatalogTrack
    interaction = staticmethod(interaction)

    def recommend(self, user_id: str = "", *, query_text: str = "", seed_track_ids: Sequence[str] = (), k: int = 10,
                  filter: Any = None, **options: Any) -> Any:
        """At least one of ``user_id``, ``query_text``, ``seed_track_ids``."""
        request = recommender_pb2.RecommendRequest(user_id=user_id, query_text=query_text,
                                                   seed_track_ids=_texts(seed_track_ids), k=k,
                                                   filter=_message(recommender_pb2.RecommendationFilter, filter or {}))
        return self._unary("Recommend", request, **options)

    def similar_tracks(self, track_id: str, *, k: int = 10, filter: Any = None, **options: Any) -> Any:
        request = recommender_pb2.SimilarTracksRequest(
            track_id=track_id, k=k, filter=_message(recommender_pb2.RecommendationFilter, filter or {}))
        return self._unary("SimilarTracks", request, **options)

    def record_interactions(self, events: Iterable[Any], **options: Any) -> Any:
        """InteractionEvents (or dicts of interaction()'s keywords). Retrying a batch is safe: events whose
        event_id is stored already come back as duplicates."""
        request = recommender_pb2.RecordInteractionsRequest(
            events=[_message(recommender_pb2.InteractionEvent, e) for e in events])
        return self._unary("RecordInteractions", request, **options)

    def upsert_tracks(self, tracks: Iterable[Any], **options: Any) -> Any:
        """CatalogTracks (or dicts of their fields); ``track_id`` is required."""
        request = recommender_pb2.UpsertTracksRequest(tracks=[_message(recommender_pb2.CatalogTrack, t)
                                                              for t in tracks])
        return self._unary("UpsertTracks", request, **options)

    def get_track(self, track_id: str, **options: Any) -> Any:
        return self._unary("GetTrack", recommender_pb2.GetTrackRequest(track_id=track_id), **options)

    def retrain(self, **options: Any) -> Any:
        return self._unary("RetrainModel", recommender_pb2.RetrainModelRequest(), **options)


# ---- KServe v2 -------------------------------------------------------------------------------------------
class Inference(ServiceClient):
    """``inference.GRPCInferenceService`` (Open Inference Protocol / KServe v2) on every model of the suite; the
    gateway routes a model call to the service that serves the model. ``infer`` takes numpy arrays (or nested
    lists, cast to the datatype given) and ``Inference.outputs(response)`` turns the answer into numpy arrays."""

    stub = kserve_pb2_grpc.GRPCInferenceServiceStub

    def server_live(self, **options: Any) -> Any:
        return self._unary("ServerLive", kserve_pb2.ServerLiveRequest(), **options)

    def server_ready(self, **options: Any) -> Any:
        return self._unary("ServerReady", kserve_pb2.ServerReadyRequest(), **options)

    def server_metadata(self, **options: Any) -> Any:
        return self._unary("ServerMetadata", kserve_pb2.ServerMetadataRequest(), **options)

    def model_ready(self, name: str, version: str = "", **options: Any) -> Any:
        return self._unary("ModelReady", kserve_pb2.ModelReadyRequest(name=name, version=version), **options)

    def model_metadata(self, name: str, version: str = "", **options: Any) -> Any:
        return self._unary("ModelMetadata", kserve_pb2.ModelMetadataRequest(name=name, version=version), **options)

    def infer(self, model: str, inputs: Mapping[str, Any], *, datatypes: Mapping[str, str] | None = None,
              outputs: Sequence[str] = (), version: str = "", id: str = "", **options: Any) -> Any:
        """ModelInfer with ``inputs`` by name; ``datatypes`` ("INT64", "FP32", "BYTES", ...) by name where the
        array's own dtype is not the one the model takes; ``outputs``: the names wanted (default all)."""
        request = tensors.infer_request(model, inputs, datatypes or {}, outputs, version, id)
        return self._unary("ModelInfer", request, **options)

    @staticmethod
    def outputs(response: Any) -> dict[str, Any]:
        """The answer's tensors as numpy arrays, by name (BYTES as numpy object arrays of bytes)."""
        return tensors.outputs(response)


# client attribute -> service class (client.nlp.embed(...), client.music.compose(...), ...)
SERVICES: dict[str, type[ServiceClient]] = {
    "nlp": NlpAnalysis,
    "textgen": TextGenerator,
    "music": MusicGenerator,
    "recommender": MusicRecommender,
    "inference": Inference,
}
