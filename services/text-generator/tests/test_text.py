"""Incremental detokenisation, stop sequences and the chat template, with the served model's own tokenizer."""

import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from text_generator.chat import ChatTemplate
from text_generator.text import REPLACEMENT, IncrementalDetokenizer, StopMatcher, TextStream

MODEL_DIR = Path(__file__).resolve().parents[3] / "models" / "smollm2-135m-instruct-int8" / "1"


@pytest.fixture(scope="module")
def tokenizer():
    if not MODEL_DIR.exists():
        pytest.fail("model smollm2-135m-instruct-int8 is not built: run `make models`")
    return Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))


TEXTS = ["Hi 🎵 café 東京 — naïve Ωmega 👩‍👩‍👧", "  leading spaces\nand\ttabs ", "emoji at the end 🎸🎸"]


@pytest.mark.parametrize("text", TEXTS)
def test_deltas_are_whole_characters_and_add_up(tokenizer, text):
    ids = tokenizer.encode(text).ids
    assert any(REPLACEMENT in tokenizer.decode([i]) for i in ids) or "emoji" not in text
    detok = IncrementalDetokenizer(tokenizer)
    deltas = [detok.add(i) for i in ids] + [detok.flush()]
    assert "".join(deltas) == text
    assert all(REPLACEMENT not in d for d in deltas)
    assert sum(1 for d in deltas if d == "") > 0 or len(ids) == len(text)  # split characters were held back


def test_first_token_keeps_its_leading_space_after_the_prompt(tokenizer):
    prompt = tokenizer.encode("The capital of France is").ids
    answer = tokenizer.encode(" Paris, of course.").ids
    detok = IncrementalDetokenizer(tokenizer, prompt[-4:])
    assert "".join(detok.add(i) for i in answer) + detok.flush() == " Paris, of course."


def test_an_incomplete_character_at_the_end_is_dropped(tokenizer):
    ids = tokenizer.encode("ok 🎵").ids
    detok = IncrementalDetokenizer(tokenizer)
    out = "".join(detok.add(i) for i in ids[:-1]) + detok.flush()
    assert out == "ok "


def test_stop_matcher_holds_back_possible_stops_and_cuts_at_the_first():
    m = StopMatcher(["\n\n", "END"])
    assert m.feed("Hello E") == ("Hello ", None)  # "E" may start "END"
    assert m.feed("N") == ("", None)
    assert m.feed("ough\n") == ("ENough", None)
    assert m.feed("\nmore") == ("", "\n\n")
    m = StopMatcher(["bb", "abc"])
    assert m.feed("xxabc") == ("xx", "abc")
    assert StopMatcher([]).feed("abc") == ("abc", None)
    m = StopMatcher(["STOP"])
    assert m.feed("ST") == ("", None) and m.flush() == "ST"


def test_text_stream_attributes_text_to_tokens_and_excludes_the_stop(tokenizer):
    text = "one, two, three. four"
    ids = tokenizer.encode(text).ids
    stream = TextStream(tokenizer, [], [". "])
    stopped_at = next(i for i, t in enumerate(ids) if stream.push(t))
    assert stream.stop_sequence == ". " and stopped_at == len(ids) - 1  # known when " four" arrives
    assert stream.take(stopped_at) == "one, two, three" and stream.take() == ""


def test_chat_template_renders_like_transformers(tokenizer):
    from transformers import PreTrainedTokenizerFast

    manifest = json.loads((MODEL_DIR / "manifest.json").read_text())
    source = (MODEL_DIR / manifest["chat_template"]).read_text()
    messages = [("system", "You write lyrics."), ("user", "A line about the sea?"), ("assistant", "Waves ✨"),
                ("user", "Another")]
    ours = tokenizer.encode(ChatTemplate(source).render(messages), add_special_tokens=False).ids
    hf = PreTrainedTokenizerFast(tokenizer_file=str(MODEL_DIR / "tokenizer.json"))
    theirs = hf.apply_chat_template([{"role": r, "content": c} for r, c in messages], chat_template=source,
                                    add_generation_prompt=True, tokenize=True, return_dict=False)
    assert ours == theirs
