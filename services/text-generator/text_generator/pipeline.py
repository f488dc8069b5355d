"""The model work of text-generator in plain Python: tokenizer, chat template, validation, and text around the
runtime's generation engine (which sees token ids only). No gRPC here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import AsyncIterator, Sequence

import numpy as np
from tokenizers import Tokenizer

from maas_runtime.errors import FieldViolation, InvalidArgument, quote
from maas_runtime.generation import DecoderModel, FinishReason, GenerationEngine, SamplingParams
from maas_runtime.onnx_model import ModelLoadError, OnnxModel
from text_generator.chat import ChatTemplate, ChatTemplateError
from text_generator.settings import TextGenSettings
from text_generator.text import TextStream

CONTEXT_TOKENS = 4  # prompt tokens the detokenizer starts from (keeps the first token's leading space)
MAX_SEED = 2**64 - 1


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str = ""
    messages: tuple[tuple[str, str], ...] = ()
    max_new_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int = 0
    repetition_penalty: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    logprobs: bool = False


@dataclass
class TextDelta:
    """One streamed event; the last one has ``finish_reason`` and the token counts."""

    text: str
    tokens: list[tuple[int, float]] = field(default_factory=list)
    finish_reason: FinishReason | None = None
    stop_sequence: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seed: int | None = None


@dataclass(frozen=True)
class GenerationResult:
    text: str
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    seed: int
    stop_sequence: str = ""
    tokens: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class ScoredToken:
    id: int
    start: int
    end: int
    logprob: float | None


@dataclass(frozen=True)
class ScoreResult:
    tokens: tuple[ScoredToken, ...]
    perplexity: float
    total_logprob: float
    scored_tokens: int


class TextGenPipeline:
    def __init__(self, model: OnnxModel, settings: TextGenSettings) -> None:
        self.model = model
        self.settings = settings
        manifest = model.manifest
        self.tokenizer = Tokenizer.from_file(str(model.directory / manifest.get("tokenizer", "tokenizer.json")))
        template = manifest.get("chat_template")
        self.chat = (ChatTemplate((model.directory / template).read_text(), manifest.get("bos_token"),
                                  manifest.get("eos_token")) if template else None)
        self.roles = tuple(manifest.get("chat_roles") or ("system", "user", "assistant"))
        self.eos_token_ids = tuple(int(t) for t in manifest.get("eos_token_ids", ()))
        decoder = DecoderModel(model, io_binding=settings.binds(model.provider))
        context = decoder.context_length
        if settings.max_context_tokens:
            context = min(context, settings.max_context_tokens)
        if context < 2:
            raise ModelLoadError(f"model {model.name}: context of {context} tokens")
        self.context_length = context
        self.engine = GenerationEngine(decoder, model.executor, max_batch_size=settings.batch_size(model.provider),
                                       max_queue_size=settings.max_queue_size,
                                       prefill_chunk_tokens=settings.prefill_chunk_tokens,
                                       max_batch_tokens=settings.max_batch_tokens, context_length=context,
                                       prefix_cache_bytes=settings.prefix_cache_mb * 2**20,
                                       max_queue_wait_s=settings.max_queue_wait_s)
        self._openings: dict[tuple[tuple, str], list[int]] = {}  # (system messages, next role) -> opening tokens

    async def warmup(self) -> None:
        """One generation and one scoring through the engine (first runs of every shape the server uses)."""
        ids = self.tokenizer.encode("Warm-up: a short sentence to run the graph.").ids
        async for _ in self.engine.generate(ids, SamplingParams(max_new_tokens=2, temperature=0.0)):
            pass
        await self.engine.score(ids)
        self.model.ready = True

    async def close(self) -> None:
        await self.engine.close()

    # ---- input -------------------------------------------------------------------------------------
    def shared_prefix(self, ids: Sequence[int], messages: Sequence[tuple[str, str]]) -> int:
        """How many of a chat prompt's tokens are its conversation's opening (``ChatTemplate.opening``: the system
        turn and the next message's header), the part other conversations with the same system messages share,
        whose cache the engine keeps."""
        k = next((i for i, (role, _) in enumerate(messages) if role != "system"), len(messages))
        if self.chat is None or k == len(messages):
            return 0
        system, role = tuple(messages[:k]), messages[k][0]
        opening = self._openings.get((system, role))
        if opening is None:
            if len(self._openings) >= 256:
                self._openings.clear()
            opening = self._openings[(system, role)] = self.tokenizer.encode(self.chat.opening(system, role),
                                                                             add_special_tokens=False).ids
        n = 0
        for a, b in zip(opening, ids):
            if a != b:
                break
            n += 1
        return n

    def _text_or_messages(self, text: str, messages: Sequence[tuple[str, str]], text_field: str) -> list[int]:
        s = self.settings
        if text and messages:
            raise InvalidArgument("messages", f"give either {text_field} or messages, not both")
        if messages:
            if self.chat is None:
                raise InvalidArgument("messages", f"model {self.model.name} has no chat template; send {text_field}")
            if len(messages) > s.max_messages:
                raise InvalidArgument("messages", f"holds {len(messages)} messages; at most {s.max_messages}")
            bad, chars = [], 0
            for i, (role, content) in enumerate(messages):
                if role not in self.roles:
                    bad.append(FieldViolation(f"messages[{i}].role",
                                              f"unknown role {quote(role)}; known: {', '.join(self.roles)}"))
                chars += len(content)
            if chars > s.max_prompt_chars:
                bad.append(FieldViolation("messages", f"{chars} characters; at most {s.max_prompt_chars}"))
            if bad:
                raise InvalidArgument(bad[0].field, bad[0].description, *bad[1:])
            try:
                rendered = self.chat.render(messages)
            except ChatTemplateError as exc:
                raise InvalidArgument("messages", f"the model's chat template refused them: {exc}") from None
            return self.tokenizer.encode(rendered, add_special_tokens=False).ids
        if not text:
            raise InvalidArgument(text_field, f"is empty; give {text_field} or messages")
        if len(text) > s.max_prompt_chars:
            raise InvalidArgument(text_field, f"has {len(text)} characters; at most {s.max_prompt_chars}")
        return self.tokenizer.encode(text, add_special_tokens=True).ids

    def prepare(self, req: GenerationRequest) -> tuple[list[int], SamplingParams]:
        """Validate a request (INVALID_ARGUMENT naming each bad field) and turn it into ids and parameters."""
        s = self.settings
        bad: list[FieldViolation] = []

        def check(ok: bool, name: str, why: str) -> None:
            if not ok:
                bad.append(FieldViolation(name, why))

        max_new = s.default_max_new_tokens if req.max_new_tokens is None else req.max_new_tokens
        check(1 <= max_new <= s.max_new_tokens_limit, "max_new_tokens",
              f"is {max_new}; must be 1 .. {s.max_new_tokens_limit}")
        temperature = s.default_temperature if req.temperature is None else req.temperature
        check(math.isfinite(temperature) and 0 <= temperature <= 100, "temperature",
              f"is {temperature}; must be a number in [0, 100] (0: greedy)")
        top_p = s.default_top_p if req.top_p is None else req.top_p
        check(math.isfinite(top_p) and 0 < top_p <= 1, "top_p", f"is {top_p}; must be in (0, 1]")
        check(req.top_k >= 0, "top_k", f"is {req.top_k}; must be >= 0 (0: off)")
        penalty = 1.0 if req.repetition_penalty is None else req.repetition_penalty
        check(math.isfinite(penalty) and 0 < penalty <= 10, "repetition_penalty",
              f"is {penalty}; must be in (0, 10] (1: off)")
        check(req.seed is None or 0 <= req.seed <= MAX_SEED, "seed", "must be an unsigned 64-bit integer")
        check(len(req.stop) <= s.max_stop_sequences, "stop",
              f"holds {len(req.stop)} sequences; at most {s.max_stop_sequences}")
        for i, stop in enumerate(req.stop):
            check(0 < len(stop) <= s.max_stop_chars, f"stop[{i}]", f"must be 1 .. {s.max_stop_chars} characters")
        ids: list[int] = []
        try:
            ids = self._text_or_messages(req.prompt, req.messages, "prompt")
        except InvalidArgument as exc:
            bad = exc.violations + bad
        if ids and len(ids) >= self.context_length:
            where = "messages" if req.messages else "prompt"
            bad.insert(0, FieldViolation(where, f"is {len(ids)} tokens; the context holds {self.context_length} "
                                                "(prompt and generated tokens together)"))
        if bad:
            raise InvalidArgument(bad[0].field, bad[0].description, *bad[1:])
        params = SamplingParams(max_new_tokens=max_new, temperature=temperature, top_k=req.top_k, top_p=top_p,
                                repetition_penalty=penalty, seed=req.seed, stop_token_ids=self.eos_token_ids)
        return ids, params

    # ---- generation --------------------------------------------------------------------------------
    async def stream(self, req: GenerationRequest, deadline: float | None = None) -> AsyncIterator[TextDelta]:
        """Text deltas as tokens are decoded; the last delta carries the finish reason and the counts.
        Closing the iterator (a cancelled or dropped call) takes the request out of the batch."""
        self.engine.admit()  # under overload, refuse before the template and the tokenizer run
        ids, params = self.prepare(req)
        text = TextStream(self.tokenizer, ids[-CONTEXT_TOKENS:], req.stop)
        generation = self.engine.generate(ids, params, stop=text.push, deadline=deadline,
                                          shared_prefix=self.shared_prefix(ids, req.messages))
        tokens: list[tuple[int, float]] = []
        first = True
        async with generation:
            async for event in generation:
                if req.logprobs:
                    tokens.append((event.token_id, event.logprob))
                if event.finish_reason is None:
                    piece = text.take(event.index)
                    if piece:
                        yield TextDelta(piece, tokens, seed=generation.seed if first else None)
                        tokens, first = [], False
                    continue
                text.finish()
                reason = FinishReason.STOP if text.stop_sequence is not None else event.finish_reason
                yield TextDelta(text.take(), tokens, reason, text.stop_sequence or "", len(ids), event.index + 1,
                                seed=generation.seed if first else None)

    async def generate(self, req: GenerationRequest, deadline: float | None = None) -> GenerationResult:
        parts, tokens, seed = [], [], 0
        last: TextDelta | None = None
        async for delta in self.stream(req, deadline):
            parts.append(delta.text)
            tokens += delta.tokens
            seed = delta.seed if delta.seed is not None else seed
            last = delta
        assert last is not None and last.finish_reason is not None
        return GenerationResult("".join(parts), last.finish_reason, last.prompt_tokens, last.completion_tokens,
                                seed, last.stop_sequence, tuple(tokens))

    # ---- counting and scoring ----------------------------------------------------------------------
    def count_tokens(self, text: str, messages: Sequence[tuple[str, str]]) -> int:
        return len(self._text_or_messages(text, messages, "text"))

    async def score(self, text: str, deadline: float | None = None) -> ScoreResult:
        if not text:
            raise InvalidArgument("text", "is empty")
        if len(text) > self.settings.max_prompt_chars:
            raise InvalidArgument("text", f"has {len(text)} characters; at most {self.settings.max_prompt_chars}")
        encoding = self.tokenizer.encode(text, add_special_tokens=True)
        ids = encoding.ids
        if len(ids) < 2:
            raise InvalidArgument("text", "is one token long; scoring needs at least two")
        if len(ids) > self.context_length:
            raise InvalidArgument("text", f"is {len(ids)} tokens; at most {self.context_length}")
        logprobs = await self.engine.score(ids, deadline=deadline)
        total = float(np.sum(logprobs, dtype=np.float64))
        tokens = tuple(ScoredToken(t, start, end, None if i == 0 else float(logprobs[i - 1]))
                       for i, (t, (start, end)) in enumerate(zip(ids, encoding.offsets)))
        return ScoreResult(tokens, math.exp(-total / len(logprobs)), total, len(logprobs))
