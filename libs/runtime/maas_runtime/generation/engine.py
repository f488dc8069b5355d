"""Continuous batching over a decoder-only ONNX model with a KV cache.

One scheduler task per model runs iterations; each iteration is at most one prefill run and one decoding step,
both on the runtime's ``BoundedExecutor`` (never on the event loop):

* **admission**: a request is queued only when it would start within ``max_queue_wait_s`` (its expected wait:
  the requests ahead of it over the rate the queue drained at lately) and the queue is shorter than
  ``max_queue_size``; else it is refused at once, RESOURCE_EXHAUSTED with a retry hint.
* **prefill**: requests waiting in the (bounded) queue are admitted while the batch has room (``max_batch_size``
  rows, ``max_batch_tokens`` cache tokens). Prompts that fit the ``prefill_chunk_tokens`` budget together are
  prefilled as one left-padded batch; a longer prompt is prefilled alone, one chunk per iteration, so it never
  stalls the running requests for more than a chunk. The first token is sampled from the prefill's logits.
* **shared prefixes**: a request may say that its first tokens are a prefix many requests share (a chat
  template's system turn). Those are prefilled on their own, as one chunk, and their cache is kept (least
  recently used first out, within ``prefix_cache_bytes``); a later request starting with the same tokens starts
  from it and prefills only the rest. A prompt is cut at the same place whether or not its prefix is cached, so the
  arithmetic, and with it a seeded request's tokens, is the same either way.
* **decode**: every running sequence advances by one token in one ``session.run``: the caches are one left-padded
  batch (``KVCache``) with an attention mask and per-row position ids. A request that finished its prefill joins
  at the next step; a finished, cancelled or timed-out one leaves before the next step (the batch is re-packed,
  and trimmed to its longest remaining row).
* **positions**: a token's position id is its index in the sequence, unless its request numbers its tokens
  itself (``positions``: the music model's ids also say where in the bar a token falls). The engine calls it
  with the tokens it feeds, in order (the prompt, then each generated token), once each.

Requests finish on an end-of-sequence token (EOS), on ``max_new_tokens`` or a full context (LENGTH), or when
their stop callback says so (STOP: the text layer matches stop sequences there). Nothing here knows about
text: token ids in, token ids and log-probabilities out, so any decoder-only model (text, music) reuses it.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from prometheus_client import Counter, Gauge, Histogram

from maas_runtime.errors import DeadlineExceeded, Overloaded, Unavailable
from maas_runtime.executor import BoundedExecutor
from maas_runtime.generation.decoder import SPARE_COLUMNS, DecoderModel, KVCache
from maas_runtime.generation.sampling import LogitsProcessor, Sampler, SamplingParams, log_softmax

log = logging.getLogger("maas.generation")

RUNNING = Gauge("maas_generation_running", "sequences in the decoding batch", ["model"])
WAITING = Gauge("maas_generation_waiting", "requests queued for prefill", ["model"])
TOKENS = Counter("maas_generation_tokens_total", "tokens generated", ["model"])
STEP_ROWS = Histogram("maas_generation_step_rows", "sequences per decoding step", ["model"],
                      buckets=(1, 2, 4, 8, 16, 32, 64))
FIRST_TOKEN = Histogram("maas_generation_first_token_seconds", "time from submission to the first token",
                        ["model"], buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
PREFIX_HITS = Counter("maas_generation_prefix_hits_total", "prompts whose shared prefix was found cached", ["model"])
REJECTED = Counter("maas_generation_rejected_total", "requests refused with RESOURCE_EXHAUSTED", ["model"])

StopCallback = Callable[[int], bool]
TokenPositions = Callable[[np.ndarray], np.ndarray]  # the next tokens fed -> their position ids (stateful)


class FinishReason(str, enum.Enum):
    LENGTH = "length"  # max_new_tokens reached, or the context is full
    STOP = "stop"  # the stop callback asked for it
    EOS = "eos"  # an end-of-sequence token (params.stop_token_ids) was generated


@dataclass(frozen=True)
class TokenEvent:
    token_id: int
    logprob: float  # log-probability under the model (before temperature, top-k, top-p, penalties)
    index: int  # position among the generated tokens, from 0
    finish_reason: FinishReason | None = None  # set on the last event


_ids = itertools.count()


@dataclass(eq=False)
class _Sequence:
    prompt: np.ndarray
    params: SamplingParams | None  # None: a scoring request
    sampler: Sampler | None
    stop: StopCallback | None
    deadline: float | None
    limit: int  # tokens it may generate: max_new_tokens, capped by the context
    prefix: int = 0  # the first `prefix` prompt tokens are shared with other requests: prefilled on their own
    positions: TokenPositions | None = None  # None: a token's position id is its index
    prompt_positions: np.ndarray | None = None
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    id: int = field(default_factory=lambda: next(_ids))
    submitted: float = field(default_factory=time.monotonic)
    generated: list[int] = field(default_factory=list)
    prefilled: int = 0
    cache: KVCache | None = None  # its own cache while it is prefilled chunk by chunk
    scores: list[np.ndarray] = field(default_factory=list)
    result: asyncio.Future | None = None  # scoring requests
    done: bool = False
    cancelled: bool = False

    @property
    def scoring(self) -> bool:
        return self.params is None

    @property
    def alive(self) -> bool:
        return not (self.done or self.cancelled)

    @property
    def total_tokens(self) -> int:
        return int(self.prompt.shape[0]) + self.limit

    def positions_of(self, start: int, end: int) -> np.ndarray:
        """Position ids of prompt[start:end]."""
        if self.prompt_positions is None:
            return np.arange(start, end, dtype=np.int64)
        return self.prompt_positions[start:end]

    def prefix_key(self) -> tuple:
        return (tuple(self.prompt[:self.prefix].tolist()),
                None if self.prompt_positions is None else tuple(self.prompt_positions[:self.prefix].tolist()))


class Generation:
    """A request's handle: ``async for event in generation`` yields TokenEvents until the one with a finish
    reason. ``cancel()`` (or leaving ``async with``) takes it out of the batch before the next step."""

    def __init__(self, engine: "GenerationEngine", seq: _Sequence) -> None:
        self._engine = engine
        self._seq = seq
        self._finished = False

    @property
    def seed(self) -> int:
        assert self._seq.sampler is not None
        return self._seq.sampler.seed

    @property
    def prompt_tokens(self) -> int:
        return int(self._seq.prompt.shape[0])

    def cancel(self) -> None:
        if self._seq.alive:
            self._seq.cancelled = True
            self._engine._wake.set()

    def __aiter__(self) -> "Generation":
        return self

    async def __anext__(self) -> TokenEvent:
        if self._finished:
            raise StopAsyncIteration
        item = await self._seq.queue.get()
        if isinstance(item, BaseException):
            self._finished = True
            raise item
        if item.finish_reason is not None:
            self._finished = True
        return item

    async def __aenter__(self) -> "Generation":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.cancel()


@dataclass
class _Prefill:
    seqs: list[_Sequence]
    chunked: bool  # one long prompt, one chunk of it


class GenerationEngine:
    def __init__(self, model: DecoderModel, executor: BoundedExecutor, *, max_batch_size: int = 16,
                 max_queue_size: int = 64, prefill_chunk_tokens: int = 512, max_batch_tokens: int = 65536,
                 context_length: int | None = None, prefix_cache_bytes: int = 0,
                 max_queue_wait_s: float = 0.0) -> None:
        if min(max_batch_size, max_queue_size, prefill_chunk_tokens, max_batch_tokens) < 1:
            raise ValueError("batch size, queue size, chunk and token budgets must be >= 1")
        if prefix_cache_bytes < 0:
            raise ValueError("prefix_cache_bytes must be >= 0")
        self.model = model
        self.executor = executor
        self.max_batch_size = max_batch_size if model.can_batch else 1
        self.max_queue_size = max_queue_size
        self.prefill_chunk_tokens = prefill_chunk_tokens
        self.max_batch_tokens = max_batch_tokens
        self.context_length = min(context_length or model.context_length, model.context_length)
        self.name = model.name
        self._waiting: deque[_Sequence] = deque()
        self._prefilling: _Sequence | None = None  # the long prompt being prefilled chunk by chunk
        self._joining: list[tuple[KVCache, int, _Sequence]] = []  # prefilled, joining at the next step
        self._batch: KVCache | None = None
        self._rows: list[_Sequence] = []  # one per row of _batch
        self._stepping: list[_Sequence] | None = None  # the rows of the step in flight
        self._in_prefill: list[_Sequence] = []  # the requests of the prefill in flight
        self.prefix_cache_bytes = prefix_cache_bytes
        self._prefixes: OrderedDict[tuple, KVCache] = OrderedDict()  # least recently used first
        self._prefix_bytes = 0
        self.prefix_hits = 0  # prompts that found their shared prefix cached (tests and metrics read it)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._service_s = 1.0  # moving average of a request's time in the engine (for the retry hint)
        # Admission by expected wait: a request that would wait longer than this for its prefill is refused at
        # once (0: by queue length only). The wait is read off the rate the queue drained at lately.
        self.max_queue_wait_s = max_queue_wait_s
        self._departures: deque[float] = deque(maxlen=64)  # when queued requests left the queue for a prefill
        self.steps = 0  # decoding steps run (tests and benchmarks read these)
        self.step_rows = 0  # rows summed over those steps
        log.info("generation engine", extra={"model": self.name, "max_batch_size": self.max_batch_size,
                                             "kv_cache": f"{model.store.device} {model.kv_dtype.name}",
                                             "io_binding": model.io_binding})

    # ---- public API ------------------------------------------------------------------------------
    @property
    def running(self) -> int:
        rows = self._stepping if self._stepping is not None else self._rows
        return sum(1 for s in rows if s.alive) + len(self._joining)

    @property
    def waiting(self) -> int:
        return len(self._waiting) + (self._prefilling is not None)

    def generate(self, prompt: Sequence[int], params: SamplingParams, *, stop: StopCallback | None = None,
                 deadline: float | None = None, processor: LogitsProcessor | None = None,
                 shared_prefix: int = 0, positions: TokenPositions | None = None) -> Generation:
        """Queue a generation (``deadline``: time.monotonic() value; ``processor``: a per-request constraint on
        each next token; ``shared_prefix``: how many leading prompt tokens other requests share, such as a chat
        template's system turn, whose cache is worth keeping; ``positions``: the request's own numbering of its
        tokens, see the module doc). Raises Overloaded when the queue is full and ValueError when the prompt
        leaves no room in the context."""
        ids = self._check_prompt(prompt)
        limit = min(params.max_new_tokens, self.context_length - int(ids.shape[0]))
        sampler = Sampler(params, self.model.vocab_size, ids, processor=processor)
        prefix = shared_prefix if self.prefix_cache_bytes and 0 < shared_prefix < ids.shape[0] else 0
        seq = _Sequence(ids, params, sampler, stop, deadline, limit, prefix, positions)
        if positions is not None:
            seq.prompt_positions = np.asarray(positions(ids), dtype=np.int64).reshape(-1)
            if seq.prompt_positions.shape != ids.shape:
                raise ValueError(f"positions gave {seq.prompt_positions.shape[0]} ids for {ids.shape[0]} tokens")
        self._submit(seq)
        return Generation(self, seq)

    async def score(self, tokens: Sequence[int], *, deadline: float | None = None) -> np.ndarray:
        """Log-probability of each of tokens[1:] given the tokens before it."""
        ids = self._check_prompt(tokens, scoring=True)
        seq = _Sequence(ids, None, None, None, deadline, 0)
        seq.result = asyncio.get_running_loop().create_future()
        self._submit(seq)
        try:
            return await seq.result
        finally:
            seq.cancelled = seq.cancelled or not seq.result.done()

    async def close(self) -> None:
        self._closed = True
        pending = self._everyone()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        error = Unavailable("the server is stopping")
        for seq in [*pending, *self._everyone()]:
            self._fail(seq, error)
        self._waiting.clear()
        self._joining.clear()
        self._rows, self._batch, self._prefilling, self._stepping, self._in_prefill = [], None, None, None, []

    def _everyone(self) -> list[_Sequence]:
        return [*self._waiting, *([self._prefilling] if self._prefilling else []), *(s for _, _, s in self._joining),
                *self._rows, *(self._stepping or ()), *self._in_prefill]

    # ---- admission -------------------------------------------------------------------------------
    def _check_prompt(self, prompt: Sequence[int], scoring: bool = False) -> np.ndarray:
        ids = np.asarray(prompt, dtype=np.int64).reshape(-1)
        need = 2 if scoring else 1
        if ids.shape[0] < need:
            raise ValueError(f"at least {need} token(s) needed")
        if ids.min() < 0 or ids.max() >= self.model.vocab_size:
            raise ValueError(f"token ids must be in [0, {self.model.vocab_size})")
        room = self.context_length - (0 if scoring else 1)
        if ids.shape[0] > room:
            raise ValueError(f"{ids.shape[0]} tokens; the context holds {self.context_length}")
        return ids

    def expected_wait(self) -> float:
        """Seconds a request submitted now would wait before its prefill starts: 0 while the batch has room for it
        and every request ahead of it; else the requests ahead of it (and itself) over the rate the queue drained
        at in the last 30 s, which falls while nothing leaves it (a batch a mean service time when nothing left)."""
        ahead = len(self._waiting) + (self._prefilling is not None)
        if self.running + len(self._in_prefill) + ahead < self.max_batch_size:
            return 0.0
        now = time.monotonic()
        recent = [t for t in self._departures if now - t < 30.0]
        if len(recent) >= 2:
            rate = (len(recent) - 1) / max(now - recent[0], 1e-3)
        else:
            rate = self.max_batch_size / max(self._service_s, 1e-3)
        return (ahead + 1) / rate

    def admit(self) -> None:
        """Raise now what submitting a request would raise (Unavailable when closing, Overloaded when it would
        wait too long or the queue is full): a caller checks before costly preparation (templates, tokenizing),
        so that refusals under overload stay cheap and fast."""
        if self._closed:
            raise Unavailable("the server is stopping")
        if self.max_queue_wait_s > 0:
            wait = self.expected_wait()
            if wait > self.max_queue_wait_s:
                REJECTED.labels(self.name).inc()
                raise Overloaded(f"model {self.name}: a new request would wait ~{wait:.1f}s to start (at most "
                                 f"{self.max_queue_wait_s:g}s are queued)",
                                 retry_after_s=round(max(0.1, wait - self.max_queue_wait_s), 2))
        if len(self._waiting) >= self.max_queue_size:
            REJECTED.labels(self.name).inc()
            ahead = len(self._waiting) / max(1, self.max_batch_size)
            raise Overloaded(f"model {self.name}: {len(self._waiting)} requests waiting",
                             retry_after_s=max(0.1, round(self._service_s * ahead, 2)))

    def _submit(self, seq: _Sequence) -> None:
        self.admit()
        self._waiting.append(seq)
        WAITING.labels(self.name).set(len(self._waiting))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"generation-{self.name}")
            self._task.add_done_callback(self._loop_ended)
        self._wake.set()

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        """The scheduler died (a bug): fail every request rather than leave its reader waiting forever."""
        if task.cancelled() or task.exception() is None:
            return
        log.error("generation scheduler failed", exc_info=task.exception(), extra={"model": self.name})
        error = RuntimeError(f"generation scheduler of {self.name} failed")
        for seq in self._everyone():
            self._fail(seq, error)
        self._waiting.clear()
        self._joining.clear()
        self._rows, self._batch, self._prefilling, self._stepping, self._in_prefill = [], None, None, None, []

    def _fits(self, active: list[_Sequence], extra: _Sequence) -> bool:
        rows = len(active) + 1
        if rows > self.max_batch_size:
            return False
        widest = max([s.total_tokens for s in active] + [extra.total_tokens])
        return rows * widest <= self.max_batch_tokens or not active

    # ---- events ------------------------------------------------------------------------------------
    def _finish(self, seq: _Sequence) -> None:
        seq.done = True
        seq.cache = None
        elapsed = time.monotonic() - seq.submitted
        self._service_s = 0.8 * self._service_s + 0.2 * elapsed

    def _fail(self, seq: _Sequence, error: BaseException) -> None:
        if seq.done:
            return
        self._finish(seq)
        if seq.result is not None:
            if not seq.result.done():
                seq.result.set_exception(error)
        else:
            seq.queue.put_nowait(error)

    def _emit(self, seq: _Sequence, token: int, logprob: float) -> None:
        """Record a sampled token, decide whether the sequence finishes, and hand the event to its reader."""
        assert seq.params is not None
        seq.generated.append(token)
        index = len(seq.generated) - 1
        if index == 0:
            FIRST_TOKEN.labels(self.name).observe(time.monotonic() - seq.submitted)
        TOKENS.labels(self.name).inc()
        reason = None
        if token in seq.params.stop_token_ids:
            reason = FinishReason.EOS
        else:
            if seq.stop is not None:
                try:
                    if seq.stop(token):
                        reason = FinishReason.STOP
                except Exception as exc:  # noqa: BLE001 - the caller's callback failed: that request fails
                    self._fail(seq, exc)
                    return
            if reason is None and len(seq.generated) >= seq.limit:
                reason = FinishReason.LENGTH
        if reason is not None:
            self._finish(seq)
        seq.queue.put_nowait(TokenEvent(token, logprob, index, reason))

    def _reap(self) -> None:
        """Drop cancelled requests and fail expired ones (queued, prefilling or running)."""
        now = time.monotonic()

        def gone(seq: _Sequence) -> bool:
            if seq.cancelled:
                self._finish(seq)
                return True
            if seq.deadline is not None and now > seq.deadline and not seq.done:
                self._fail(seq, DeadlineExceeded(f"deadline exceeded after {len(seq.generated)} tokens"))
                return True
            return seq.done

        if any(gone(s) for s in list(self._waiting)):
            self._waiting = deque(s for s in self._waiting if s.alive)
        if self._prefilling is not None and gone(self._prefilling):
            self._prefilling = None
        self._joining = [j for j in self._joining if not gone(j[2])]
        for seq in self._rows:
            gone(seq)
        WAITING.labels(self.name).set(len(self._waiting))

    # ---- the scheduler -----------------------------------------------------------------------------
    async def _loop(self) -> None:
        while not self._closed:
            self._reap()
            if not (self._waiting or self._prefilling or self._joining or any(s.alive for s in self._rows)):
                self._rows, self._batch = [], None
                RUNNING.labels(self.name).set(0)
                self._wake.clear()
                await self._wake.wait()
                continue
            plan = self._plan_prefill()
            if plan is not None:
                await self._run_prefill(plan)
                self._reap()
            if self._joining or any(s.alive for s in self._rows):
                await self._run_decode()
            await asyncio.sleep(0)  # readers of the events run before the next step

    def _plan_prefill(self) -> _Prefill | None:
        if self._prefilling is not None:
            return _Prefill([self._prefilling], chunked=True)
        active = [s for s in self._rows if s.alive] + [j[2] for j in self._joining]
        picked: list[_Sequence] = []
        while self._waiting:
            head = self._waiting[0]
            if not self._fits(active + picked, head):
                break
            alone = head.prompt.shape[0] > self.prefill_chunk_tokens or head.prefix > 0
            if alone or not self.model.can_batch and picked:
                if picked:
                    break
                self._waiting.popleft()
                self._departures.append(time.monotonic())
                self._start_chunks(head)
                return _Prefill([head], chunked=True)
            widest = max([int(s.prompt.shape[0]) for s in picked] + [int(head.prompt.shape[0])])
            if picked and widest * (len(picked) + 1) > self.prefill_chunk_tokens:
                break
            picked.append(self._waiting.popleft())
            self._departures.append(time.monotonic())
            if not self.model.can_batch:
                break
        WAITING.labels(self.name).set(len(self._waiting))
        return _Prefill(picked, chunked=False) if picked else None

    def _start_chunks(self, seq: _Sequence) -> None:
        """``seq`` is prefilled alone, chunk by chunk: from its cached shared prefix when there is one."""
        self._prefilling = seq
        if seq.prefix:
            key = seq.prefix_key()
            cached = self._prefixes.get(key)
            if cached is not None:
                self._prefixes.move_to_end(key)
                seq.cache, seq.prefilled = cached, seq.prefix  # read only: the next step writes a copy
                self.prefix_hits += 1
                PREFIX_HITS.labels(self.name).inc()

    def _keep_prefix(self, seq: _Sequence, cache: KVCache) -> None:
        """Runs on the executor: keep a copy of the shared prefix just prefilled, exactly as wide as it."""
        kept = cache.columns(cache.width - seq.prefix, cache.width)
        size = kept.nbytes()
        if size > self.prefix_cache_bytes:
            return
        while self._prefixes and self._prefix_bytes + size > self.prefix_cache_bytes:
            self._prefix_bytes -= self._prefixes.popitem(last=False)[1].nbytes()
        key = seq.prefix_key()
        if key in self._prefixes:  # two requests with the same new prefix were prefilled in turn
            self._prefix_bytes -= self._prefixes.pop(key).nbytes()
        self._prefixes[key] = kept
        self._prefix_bytes += size

    async def _run_prefill(self, plan: _Prefill) -> None:
        self._in_prefill = plan.seqs
        try:
            results = await self.executor.run_scheduled(self._prefill_sync, plan)
        except Exception as exc:  # noqa: BLE001 - the model failed: these requests fail, the engine goes on
            log.error("prefill failed", exc_info=exc, extra={"model": self.name})
            for seq in plan.seqs:
                self._fail(seq, exc)
            if plan.chunked:
                self._prefilling = None
            self._in_prefill = []
            return
        self._in_prefill = []  # (not in a `finally`: see _run_decode)
        if plan.chunked:
            seq = plan.seqs[0]
            if seq.prefilled < seq.prompt.shape[0]:
                return  # more chunks to go
            self._prefilling = None
        for seq, (cache, row, token) in zip(plan.seqs, results):
            if not seq.alive:
                continue
            if seq.scoring:
                assert seq.result is not None
                if not seq.result.done():
                    seq.result.set_result(np.concatenate(seq.scores) if seq.scores else np.zeros(0, np.float32))
                self._finish(seq)
                continue
            self._emit(seq, *token)
            if seq.alive:
                self._joining.append((cache, row, seq))

    def _prefill_sync(self, plan: _Prefill) -> list[tuple[KVCache, int, tuple[int, float]]]:
        """Runs on the executor: the prompt(s) through the model; the first token of each generation."""
        m = self.model
        if plan.chunked:
            seq = plan.seqs[0]
            start = seq.prefilled
            end = min(start + self.prefill_chunk_tokens, seq.prefix if start < seq.prefix else seq.prompt.shape[0])
            piece = seq.prompt[start:end]
            cache = seq.cache or KVCache.empty(m, 1)
            logits, present = m.forward(piece[None], cache.attention_mask(piece.shape[0]),
                                        seq.positions_of(start, end)[None], cache.past,
                                        last_only=not seq.scoring)
            seq.prefilled = end
            seq.cache = cache.advanced(present, m.appends)
            if end == seq.prefix:
                self._keep_prefix(seq, seq.cache)
            self._collect_scores(seq, logits[0], start)
            if seq.prefilled < seq.prompt.shape[0] or seq.scoring:
                return [(seq.cache, 0, (0, 0.0))]
            assert seq.sampler is not None
            return [(seq.cache, 0, seq.sampler(logits[0, -1]))]
        lengths = np.array([s.prompt.shape[0] for s in plan.seqs], dtype=np.int64)
        width = int(lengths.max())
        ids = np.zeros((len(plan.seqs), width), dtype=np.int64)
        for i, s in enumerate(plan.seqs):
            ids[i, width - lengths[i]:] = s.prompt
        mask = (np.arange(width)[None, :] >= (width - lengths)[:, None]).astype(np.int64)
        positions = np.zeros_like(ids)  # padding columns: 0 (masked)
        for i, s in enumerate(plan.seqs):
            positions[i, width - lengths[i]:] = s.positions_of(0, int(lengths[i]))
        scoring = any(s.scoring for s in plan.seqs)
        logits, present = m.forward(ids, mask, positions, m.empty_past(len(plan.seqs)), last_only=not scoring)
        cache = KVCache(present, lengths, store=m.store)
        out = []
        for i, s in enumerate(plan.seqs):
            s.prefilled = int(lengths[i])
            if s.scoring:
                self._collect_scores(s, logits[i, width - lengths[i]:], 0)
                out.append((cache, i, (0, 0.0)))
            else:
                assert s.sampler is not None
                out.append((cache, i, s.sampler(logits[i, -1])))
        return out

    @staticmethod
    def _collect_scores(seq: _Sequence, logits: np.ndarray, start: int) -> None:
        """Scoring: log P(prompt[t+1] | prompt[:t+1]) for the positions of this chunk."""
        if not seq.scoring:
            return
        targets = seq.prompt[start + 1:start + 1 + logits.shape[0]]
        if targets.shape[0]:
            lp = log_softmax(logits[: targets.shape[0]].astype(np.float32))
            seq.scores.append(lp[np.arange(targets.shape[0]), targets].astype(np.float32))

    async def _run_decode(self) -> None:
        keep = [i for i, s in enumerate(self._rows) if s.alive]
        joining, self._joining = self._joining, []
        self._stepping = [*(self._rows[i] for i in keep), *(j[2] for j in joining)]
        try:
            batch, rows, sampled = await self.executor.run_scheduled(self._decode_sync, self._batch, self._rows, keep,
                                                                     joining)
        except Exception as exc:  # noqa: BLE001 - the batch is lost: its requests fail, the engine goes on
            log.error("decoding step failed", exc_info=exc, extra={"model": self.name})
            for seq in self._stepping:
                self._fail(seq, exc)
            self._rows, self._batch, self._stepping = [], None, None
            return
        # (not in a `finally`: when close() cancels the step, its rows must stay findable to be failed)
        self._stepping = None
        self._batch, self._rows = batch, rows
        for _, _, seq in joining:
            seq.cache = None  # its rows now live in the batch
        self.steps += 1
        self.step_rows += len(rows)
        STEP_ROWS.labels(self.name).observe(len(rows))
        for seq, (token, logprob) in zip(rows, sampled):
            if seq.alive:  # cancelled while the step ran: its token is dropped
                self._emit(seq, token, logprob)
        RUNNING.labels(self.name).set(sum(1 for s in rows if s.alive))

    def _decode_sync(self, batch: KVCache | None, rows: list[_Sequence], keep: list[int],
                     joining: list[tuple[KVCache, int, _Sequence]]) -> tuple[KVCache, list[_Sequence], list]:
        """Runs on the executor: re-pack the batch if rows left or joined, then one token for every row."""
        if joining or batch is None or len(keep) != batch.batch:
            parts: list[tuple[KVCache, list[int]]] = []
            if batch is not None and keep:
                parts.append((batch, keep))
            for cache, row, _ in joining:
                if parts and parts[-1][0] is cache:
                    parts[-1][1].append(row)
                else:
                    parts.append((cache, [row]))
            batch = KVCache.gather(parts, spare=SPARE_COLUMNS if self.model.appends else 0)
            rows = [rows[i] for i in keep] + [seq for _, _, seq in joining]
        last = np.array([[s.generated[-1]] for s in rows], dtype=np.int64)
        positions = batch.lengths[:, None].copy()
        for i, s in enumerate(rows):
            if s.positions is not None:
                positions[i] = s.positions(last[i])
        logits, present = self.model.forward(last, batch.attention_mask(1), positions, batch.past, last_only=True)
        grown = batch.advanced(present, self.model.appends)
        sampled = [s.sampler(logits[i, -1]) if s.alive and s.sampler is not None else (0, 0.0)
                   for i, s in enumerate(rows)]
        return grown, rows, sampled
