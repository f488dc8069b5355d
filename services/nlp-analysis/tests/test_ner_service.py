"""ExtractEntities end to end with the real NER model, through a real aio server on 127.0.0.1:0."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest

from maas.nlp.v1 import nlp_pb2, nlp_pb2_grpc
from maas_modelbuild.recipes.ner import EVAL_FILE
from maas_runtime.testing import violations
from nlp_analysis import ner

FILLER = "the weather stayed mild and the river was calm all afternoon "


@pytest.fixture
def stub(channel):
    return nlp_pb2_grpc.NlpAnalysisStub(channel)


async def extract(stub, texts: list[str]) -> list[list[nlp_pb2.Entity]]:
    resp = await stub.ExtractEntities(nlp_pb2.ExtractEntitiesRequest(texts=texts))
    assert len(resp.results) == len(texts) and resp.model.name == "ner"
    return [list(r.entities) for r in resp.results]




def found(ents, label: str, text: str) -> bool:
    return any(e.label == label and e.text == text for e in ents)


async def test_clear_sentences_get_the_obvious_entities(stub):
    texts = ["Barack Obama visited Toronto on Monday with executives from Microsoft.",
             "The Vienna Philharmonic will play in Tokyo in March 2025.",
             "Shares of Siemens fell 4% after the company cut its forecast."]
    ents = await extract(stub, texts)
    assert found(ents[0], "PERSON", "Barack Obama") and found(ents[0], "GPE", "Toronto")
    assert found(ents[0], "DATE", "Monday") and found(ents[0], "ORG", "Microsoft")
    assert found(ents[1], "ORG", "Vienna Philharmonic") and found(ents[1], "GPE", "Tokyo")
    assert found(ents[1], "DATE", "March 2025")
    assert found(ents[2], "ORG", "Siemens") and found(ents[2], "PERCENT", "4%")
    for text, row in zip(texts, ents):
        for e in row:
            assert text[e.span.start:e.span.end] == e.text and 0.0 < e.score <= 1.0 and e.label in ner.LABELS


@pytest.mark.parametrize("prefix", ["🎉🎉 ", "Café Zürich, ", "東京から、", "👩‍👩‍👧‍👦 ", "Dvor\u030cák fans: ", "🇫🇷 "])
async def test_offsets_are_code_points_of_the_original_text(stub, prefix):
    base = "Barack Obama met Emmanuel Macron in Paris on Friday."
    (plain,), (shifted,) = await extract(stub, [base]), await extract(stub, [prefix + base])
    text = prefix + base
    for e in shifted:
        assert text[e.span.start:e.span.end] == e.text
    moved = {(e.label, e.span.start + len(prefix), e.span.end + len(prefix)) for e in plain}
    got = {(e.label, e.span.start, e.span.end) for e in shifted}
    for label, surface in (("PERSON", "Barack Obama"), ("PERSON", "Emmanuel Macron"), ("GPE", "Paris")):
        start = text.index(surface)
        assert (label, start, start + len(surface)) in got & moved, (label, surface, prefix)


async def test_an_entity_cut_by_a_window_edge_is_found_whole(nlp_server, stub):
    encoder = nlp_server[0].pipeline.ner.encoder
    tail = "Barack Obama visited Toronto."
    # find a filler length that puts the first window's edge between "Barack" and "Obama"
    for n in range(1, 400):
        text = (FILLER * 20)[: n * 4] + " " + tail
        doc = encoder.document(text)
        first = doc.windows[0]
        last_word = first.first_word + len(first.word_pos) - 1
        if len(doc.windows) > 1 and text[slice(*doc.spans[last_word])] == "Barack":
            break
    else:
        pytest.fail("no filler length puts the window edge inside the name")
    (ents,) = await extract(stub, [text])
    start = text.index("Barack Obama")
    assert ("PERSON", start, start + len("Barack Obama")) in {(e.label, e.span.start, e.span.end) for e in ents}


async def test_long_documents_lose_and_duplicate_nothing(stub):
    names = ["Barack Obama", "Angela Merkel", "Nelson Mandela", "Serena Williams", "Pablo Neruda"]
    parts, expected = [], []
    for k in range(40):
        name = names[k % len(names)]
        sentence = f"Yesterday {name} arrived. "
        offset = sum(map(len, parts)) + len(FILLER)
        parts.append(FILLER + sentence)
        start = offset + len("Yesterday ")
        expected.append((start, start + len(name)))
    text = "".join(parts)
    assert len(text) > 3000  # many windows
    (ents,) = await extract(stub, [text])
    people = sorted((e.span.start, e.span.end) for e in ents if e.label == "PERSON")
    assert people == expected
    assert all(text[e.span.start:e.span.end] == e.text for e in ents)


async def test_results_do_not_depend_on_batch_neighbours(stub):
    texts = ["Serena Williams won in Melbourne.", "omg saw taylor swift at the airport 😱",
             "Apple opened a store in Mumbai last April."]
    alone = [(await extract(stub, [t]))[0] for t in texts]
    together = await extract(stub, texts + [FILLER * 60, "Ein Tag in Wien mit Clara."])
    for a, b in zip(alone, together):
        assert [(e.label, e.span.start, e.span.end) for e in a] == [(e.label, e.span.start, e.span.end) for e in b]
        assert [e.score for e in a] == pytest.approx([e.score for e in b], abs=1e-4)


async def test_concurrent_requests_share_model_runs(nlp_server, stub):
    model = nlp_server[0].pipeline.ner
    batches = []
    original = model.run_sync

    def spy(windows):
        batches.append(len(windows))
        return original(windows)

    model.run_sync = spy
    try:
        await asyncio.gather(*(extract(stub, [f"Maria Garcia number {i} flew to Lima."]) for i in range(24)))
    finally:
        model.run_sync = original
    assert sum(batches) == 24 and max(batches) > 1


@pytest.mark.parametrize("texts,field", [
    ([""], "texts[0]"),
    (["fine", " \n "], "texts[1]"),
    (["x" * 100_001], "texts[0]"),  # ner_max_text_chars
    (["word " * 14_000] * 3, "texts"),  # ner_max_request_chars (each text alone is within its limit)
    (["hi"] * 65, "texts"),
])
async def test_bad_input_is_invalid_argument(stub, texts, field):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ExtractEntities(nlp_pb2.ExtractEntitiesRequest(texts=texts))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in violations(err.value)
    assert (await extract(stub, ["Lima is in Peru."]))[0]  # still serving


async def test_served_quality_matches_the_manifest(stub, repository):
    """Entity F1 on the hand-written evaluation set, recomputed through the server, equals the build's."""
    rows = [json.loads(line) for line in EVAL_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    predicted = []
    for s in range(0, len(rows), 64):
        chunk = rows[s:s + 64]
        for i, ents in enumerate(await extract(stub, [r["text"] for r in chunk])):
            predicted += [(s + i, e.span.start, e.span.end, e.label) for e in ents]
    gold = [(i, e["start"], e["end"], e["label"]) for i, r in enumerate(rows) for e in r["entities"]]
    served = ner.prf(gold, predicted)["overall"]
    manifest = json.loads((repository / "ner" / "1" / "manifest.json").read_text())
    built = manifest["evaluation"]["model"]["overall"]
    for k in ("precision", "recall", "f1"):
        assert served[k] == pytest.approx(built[k], abs=0.005), k
    assert built["f1"] > manifest["evaluation"]["teacher"]["overall"]["f1"]
