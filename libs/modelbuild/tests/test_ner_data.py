"""The NER recipe's data: the hand-written evaluation set, span conventions, synthesised sentences."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from maas_modelbuild.recipes import ner as recipe
from maas_modelbuild.recipes import ner_data
from nlp_analysis import ner

NUMERIC = {"DATE", "TIME", "PERCENT", "MONEY", "QUANTITY", "ORDINAL", "CARDINAL"}


def test_evaluation_set_is_large_mixed_and_consistent():
    rows = recipe.load_eval()  # raises on a span whose text or label is wrong
    assert len(rows) >= 150
    domains = Counter(r["domain"] for r in rows)
    assert set(domains) == {"news", "music", "review", "social"} and min(domains.values()) >= 35
    assert len({r["id"] for r in rows}) == len(rows) and len({r["text"] for r in rows}) == len(rows)
    labels = Counter(e["label"] for r in rows for e in r["entities"])
    assert min(labels[k] for k in ("PERSON", "ORG", "GPE", "DATE")) >= 50
    for r in rows:
        spans = ner.tokenize(r["text"])
        _, dropped = ner.bio_tags(spans, [(e["start"], e["end"], e["label"]) for e in r["entities"]])
        assert dropped == 0, f"{r['id']}: a gold span does not fall on word edges"


@pytest.mark.parametrize("text,span,label,expected", [
    ("The European Central Bank met", (0, 25), "ORG", "European Central Bank"),
    ("see The Starry Night", (4, 20), "WORK_OF_ART", "The Starry Night"),
    ("Frida Kahlo's house", (0, 13), "PERSON", "Frida Kahlo"),
    ("paid $240 today", (6, 9), "MONEY", "$240"),
    ("🎶 Dua Lipa live", (0, 10), "PERSON", "Dua Lipa"),
    ("in the U.S. now", (7, 11), "GPE", "U.S."),
    ("#COYG forever", (0, 5), "PERSON", None),
    ("RT @news: hi", (0, 8), "PERSON", None),
    ("wow # nice", (4, 5), "CARDINAL", None),
])
def test_teacher_spans_follow_the_project_conventions(text, span, label, expected):
    out = recipe.normalise_span(text, *span, label)
    assert (text[out[0]:out[1]] if out else None) == expected


def test_wnut_spans_override_the_teacher_where_they_overlap():
    teacher = [(0, 5, "GPE"), (10, 14, "DATE"), (20, 25, "ORG")]
    gold = [(0, 9, "ORG", "company"), (20, 25, None, "musicartist"), (30, 35, None, "other")]
    assert recipe.merge_wnut(teacher, gold) == [(0, 9, "ORG"), (10, 14, "DATE"), (20, 25, "ORG")]


def test_synthesised_sentences_are_exact_and_never_use_evaluation_names():
    rows = recipe.load_eval()
    banned = {e["text"].lower() for r in rows for e in r["entities"]}
    items = ner_data.synthesise(2000, random.Random(3), banned)
    labels = Counter()
    for text, spans in items:
        tags, dropped = ner.bio_tags(ner.tokenize(text), spans)
        assert dropped == 0, (text, spans)
        for s, e, label in spans:
            assert text[s:e] == text[s:e].strip() and label in ner.LABELS
            if label not in NUMERIC:  # names come from lists filtered against the evaluation set
                assert text[s:e].lower() not in banned, text[s:e]
            labels[label] += 1
    assert set(labels) >= set(ner.LABELS) - {"LAW"}
