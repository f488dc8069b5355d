"""nlp_analysis.ner without a model: word offsets, windows over long texts, reading back and BIO decoding."""

from __future__ import annotations

import numpy as np
import pytest
from tokenizers import Tokenizer

from nlp_analysis import ner

@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    from maas_modelbuild.recipes._common import TOKENIZER_FILE, minilm_dir

    return Tokenizer.from_file(str(minilm_dir() / TOKENIZER_FILE))

def words(text: str) -> list[str]:
    return [text[s:e] for s, e in ner.tokenize(text)]

def test_words_keep_exact_code_point_offsets_through_emoji_accents_and_cjk():
    text = "🎶👩‍🎤 東京で Dvor\u030cák's “New World” cost $1,300.50 at 10:30 #COYG @bob — U.S. tour"
    spans = ner.tokenize(text)
    assert all(text[s:e] == w for (s, e), w in zip(spans, words(text)))
    assert "Dvor\u030cák" in words(text)  # a combining mark stays inside its word
    assert {"'s", "$", "1,300.50", "10:30", "#COYG", "@bob", "U.S."} <= set(words(text))
    assert all(not text[s:e].isspace() for s, e in spans)

@pytest.mark.parametrize("word,cls", [("paris", ner.LOWER), ("Paris", ner.TITLE), ("NASA", ner.UPPER),
                                      ("iPhone", ner.MIXED), ("LeBron", ner.MIXED), ("I", ner.TITLE),
                                      ("2,900", ner.DIGITS), ("🙃", ner.SYMBOL), ("東京", ner.UNCASED)])
def test_casing_classes(word, cls):
    assert ner.case_class(word) == cls

def test_long_text_windows_overlap_and_cover_every_word(tokenizer):
    enc = ner.Encoder(tokenizer, max_pieces=24, overlap=8)
    text = " ".join(f"Word{i} and Björk" for i in range(60))
    doc = enc.document(text)
    assert len(doc.windows) > 5
    covered = set()
    for prev, win in zip(doc.windows, doc.windows[1:]):
        prev_words = set(range(prev.first_word, prev.first_word + len(prev.word_pos)))
        assert win.first_word in prev_words, "consecutive windows share words"
    for win in doc.windows:
        assert len(win.input_ids) <= 24 and win.input_ids[0] == enc.cls_id and win.input_ids[-1] == enc.sep_id
        assert win.case_ids[0] == 0 and win.case_ids[-1] == 0
        covered |= set(range(win.first_word, win.first_word + len(win.word_pos)))
    assert covered == set(range(len(doc.spans)))


def test_every_word_of_a_long_text_reaches_the_model(tokenizer):
    tokenizer.enable_truncation(128)  # as MiniLM's tokenizer.json ships: the encoder must undo it
    enc = ner.Encoder(tokenizer, max_pieces=128, overlap=32)
    text = " ".join(f"Nelson Mandela visited Lagos {i} times." for i in range(300))
    doc = enc.document(text)
    assert all((w.word_pos >= 0).all() for w in doc.windows)
    last = doc.windows[-1]
    assert last.first_word + len(last.word_pos) == len(doc.spans)
    assert sum(len(w.input_ids) - 2 for w in doc.windows) > len(doc.spans)

def test_each_word_is_read_from_the_window_where_it_has_most_context(tokenizer):
    enc = ner.Encoder(tokenizer, max_pieces=16, overlap=6)
    doc = enc.document(" ".join(["alpha"] * 40))
    # window k marks every word with tag k+1: the chosen window must be the most central one
    probs = []
    for k, win in enumerate(doc.windows):
        p = np.zeros((len(win.input_ids), len(ner.TAGS)), dtype=np.float32)
        p[:, k + 1] = 1.0
        probs.append(p)
    chosen = ner.word_probabilities(doc, probs).argmax(1) - 1
    for w, k in enumerate(chosen):
        win = doc.windows[k]
        pos = win.word_pos[w - win.first_word]
        ctx = min(pos, len(win.input_ids) - 1 - pos)
        for other in doc.windows:
            if other.first_word <= w < other.first_word + len(other.word_pos):
                opos = other.word_pos[w - other.first_word]
                assert ctx >= min(opos, len(other.input_ids) - 1 - opos)

def test_viterbi_never_starts_an_entity_with_inside():
    # per-word argmax would give O, I-PERSON, I-PERSON: the decoder must make it a whole entity or nothing
    text = "met Ada Lovelace"
    spans = ner.tokenize(text)
    probs = np.full((3, len(ner.TAGS)), 1e-4, dtype=np.float32)
    probs[0, 0] = 0.9
    probs[1, ner.TAG_INDEX["I-PERSON"]], probs[1, ner.TAG_INDEX["B-PERSON"]] = 0.55, 0.4
    probs[2, ner.TAG_INDEX["I-PERSON"]] = 0.9
    ents = ner.decode(text, spans, probs / probs.sum(1, keepdims=True))
    assert [(e.label, e.text) for e in ents] == [("PERSON", "Ada Lovelace")]
    assert ents[0].text == text[ents[0].start:ents[0].end] and 0 < ents[0].score <= 1

def test_bio_tags_and_prf():
    text = "Bach's Leipzig years"
    spans = ner.tokenize(text)
    tags, dropped = ner.bio_tags(spans, [(0, 4, "PERSON"), (7, 14, "GPE"), (1, 3, "ORG")])
    assert [ner.TAGS[t] for t in tags] == ["B-PERSON", "O", "B-GPE", "O"] and dropped == 1
    gold = [(0, 0, 4, "PERSON"), (0, 7, 14, "GPE")]
    r = ner.prf(gold, [(0, 0, 4, "PERSON"), (0, 7, 14, "LOC")])
    assert r["overall"]["precision"] == 0.5 and r["overall"]["recall"] == 0.5
    assert r["per_label"]["PERSON"]["f1"] == 1.0 and r["per_label"]["GPE"]["recall"] == 0.0
