"""Terminal output shared by the ``maas`` commands: a progress line on stderr, score bars."""

from __future__ import annotations

import sys
from typing import TextIO


def bar(score: float, width: int = 20) -> str:
    n = max(0, min(width, round(score * width)))
    return "█" * n + "·" * (width - n)


class Progress:
    """A status line on stderr for long operations. On a terminal it is rewritten in place; on a pipe or a log
    file each new status is a line of its own (printed only when it changes)."""

    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty() if hasattr(self.stream, "isatty") else False
        self._last = ""
        self._step: object = None

    def update(self, text: str, step: object = None) -> None:
        """Shows ``text``; off a terminal only when ``step`` (e.g. the bar) changed, or with no step given."""
        if not self.enabled or text == self._last:
            return
        if self.tty:
            pad = max(0, len(self._last) - len(text))
            self.stream.write("\r" + text + " " * pad)
        elif step is None or step != self._step:
            self.stream.write(text + "\n")
        else:
            return
        self.stream.flush()
        self._last, self._step = text, step

    def done(self, text: str | None = None) -> None:
        """Ends the status line (with a last text, if given)."""
        if text is not None:
            self.update(text)
        if self.enabled and self.tty and self._last:
            self.stream.write("\n")
            self.stream.flush()
        self._last, self._step = "", None


def composition_status(bars_done: int, bars_total: int, notes: int, seconds: float) -> str:
    width = 16
    filled = 0 if bars_total <= 0 else min(width, round(width * bars_done / bars_total))
    meter = "█" * filled + "·" * (width - filled)
    return f"  composing [{meter}] bar {bars_done}/{bars_total} · {notes} notes · {seconds:.1f}s"
