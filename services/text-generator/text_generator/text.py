"""Token ids -> text as they are generated: incremental detokenisation that never splits a character, and
stop sequences that never reach the output. Plain Python, no model and no gRPC.
"""

from __future__ import annotations

from typing import Protocol, Sequence

REPLACEMENT = "\ufffd"


class Decoder(Protocol):
    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str: ...


class IncrementalDetokenizer:
    """Text deltas of a growing token sequence (the prefix/read-offset scheme of text-generation-inference).

    Decoding a window of tokens rather than each token alone keeps what the tokenizer's decoder does across
    tokens (byte-level pieces, leading spaces). A delta that would end in U+FFFD — a UTF-8 character whose
    bytes are split across tokens — is held back until the character is complete. ``context`` is the end of
    the prompt: decoding starts there, so the first generated token keeps its leading space.
    """

    def __init__(self, tokenizer: Decoder, context: Sequence[int] = ()) -> None:
        self.tokenizer = tokenizer
        self.ids = list(context)
        self.prefix = 0
        self.read = len(self.ids)

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def add(self, token: int) -> str:
        self.ids.append(int(token))
        before = self._decode(self.ids[self.prefix:self.read])
        after = self._decode(self.ids[self.prefix:])
        if len(after) > len(before) and not after.endswith(REPLACEMENT):
            self.prefix, self.read = self.read, len(self.ids)
            return after[len(before):]
        return ""

    def flush(self) -> str:
        """Whatever is held back, at the end of generation. A character whose bytes never completed (generation
        stopped in the middle of it) is dropped rather than sent as U+FFFD."""
        before = self._decode(self.ids[self.prefix:self.read])
        after = self._decode(self.ids[self.prefix:])
        self.prefix = self.read = len(self.ids)
        return after[len(before):].rstrip(REPLACEMENT) if len(after) > len(before) else ""


class StopMatcher:
    """Releases text up to the first stop sequence. Text that may be the beginning of a stop sequence is held
    back until it is known not to be one, so a streamed stop sequence never reaches the client."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.buffer = ""

    def feed(self, piece: str) -> tuple[str, str | None]:
        """Returns (text to release, the stop sequence found or None)."""
        if not self.stops:
            return piece, None
        self.buffer += piece
        found: tuple[int, str] | None = None
        for stop in self.stops:
            at = self.buffer.find(stop)
            if at >= 0 and (found is None or at < found[0]):
                found = (at, stop)
        if found is not None:
            out, self.buffer = self.buffer[:found[0]], ""
            return out, found[1]
        hold = 0
        for stop in self.stops:
            for k in range(min(len(stop) - 1, len(self.buffer)), hold, -1):
                if self.buffer.endswith(stop[:k]):
                    hold = k
                    break
        cut = len(self.buffer) - hold
        out, self.buffer = self.buffer[:cut], self.buffer[cut:]
        return out, None

    def flush(self) -> str:
        out, self.buffer = self.buffer, ""
        return out


class TextStream:
    """One generation's text. ``push`` is the engine's stop callback (called with each token but the
    end-of-sequence one); ``take(index)`` hands out the text released up to the token ``index``."""

    def __init__(self, tokenizer: Decoder, context: Sequence[int], stops: Sequence[str]) -> None:
        self.detokenizer = IncrementalDetokenizer(tokenizer, context)
        self.matcher = StopMatcher(stops)
        self.index = -1
        self.stop_sequence: str | None = None
        self._released: list[tuple[int, str]] = []
        self._taken = 0
        self.text = ""  # everything released so far

    def _release(self, piece: str) -> None:
        if piece:
            self._released.append((self.index, piece))
            self.text += piece

    def push(self, token: int) -> bool:
        self.index += 1
        out, stop = self.matcher.feed(self.detokenizer.add(token))
        self._release(out)
        if stop is not None:
            self.stop_sequence = stop
            return True
        return False

    def finish(self) -> None:
        """End of generation (length or end-of-sequence): release what was held back."""
        if self.stop_sequence is not None:
            return
        out, stop = self.matcher.feed(self.detokenizer.flush())
        self._release(out)
        if stop is not None:
            self.stop_sequence = stop
        else:
            self._release(self.matcher.flush())

    def take(self, index: int | None = None) -> str:
        """Text released for tokens up to ``index`` (all of it when None) not taken yet."""
        parts = []
        while self._taken < len(self._released) and (index is None or self._released[self._taken][0] <= index):
            parts.append(self._released[self._taken][1])
            self._taken += 1
        return "".join(parts)
