"""The model's chat template (Jinja2, from its tokenizer files), rendered the way transformers renders it:
a sandboxed environment with trim_blocks / lstrip_blocks, ``raise_exception``, ``strftime_now`` and a
non-escaping ``tojson``. Templates are data shipped with a model; the sandbox keeps them from doing harm.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Sequence

from jinja2 import TemplateError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


class ChatTemplateError(ValueError):
    """The template refused the conversation (its own ``raise_exception``)."""


def _raise(message: str) -> None:
    raise ChatTemplateError(message)


def _tojson(x: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None,
            sort_keys: bool = False) -> str:
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


_SENTINEL = "\ue000"  # a private-use character: no template adds or changes it


class ChatTemplate:
    def __init__(self, source: str, bos_token: str | None = None, eos_token: str | None = None) -> None:
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
        env.filters["tojson"] = _tojson
        env.globals["raise_exception"] = _raise
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        self.template = env.from_string(source)
        self.bos_token = bos_token or ""
        self.eos_token = eos_token or ""

    def render(self, messages: Sequence[tuple[str, str]], add_generation_prompt: bool = True) -> str:
        try:
            return self.template.render(messages=[{"role": r, "content": c} for r, c in messages],
                                        add_generation_prompt=add_generation_prompt, bos_token=self.bos_token,
                                        eos_token=self.eos_token)
        except ChatTemplateError:
            raise
        except TemplateError as exc:
            raise ChatTemplateError(str(exc)) from exc

    def opening(self, system: Sequence[tuple[str, str]], role: str) -> str:
        """What a conversation that starts with the ``system`` messages holds before the content of its next
        message, of ``role``: the system turn (the template's default one when there is none) and that message's
        header. Every such conversation begins with it. Empty when it cannot be told."""
        text = self.render([*system, (role, _SENTINEL)], add_generation_prompt=False)
        return text[:max(text.find(_SENTINEL), 0)]
