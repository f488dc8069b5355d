"""nlp_analysis.zero_shot on hand-made unit vectors: no model needed."""

from __future__ import annotations

import numpy as np
import pytest

from nlp_analysis import zero_shot


def unit(*v: float) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32)
    return a / np.linalg.norm(a)


# Four labels on the axes of a 4-d space; texts placed between them.
LABELS = np.eye(4, dtype=np.float32)
TEXTS = np.stack([unit(1, 0.2, 0, 0), unit(0.1, 0.1, 1, 0.5), unit(0, 0, 0, 1)])
KW = {"logit_scale": 20.0, "threshold": 0.3}


def test_softmax_rows_sum_to_one_and_follow_cosine_order() -> None:
    s = zero_shot.scores(TEXTS, LABELS, multi_label=False, **KW)
    assert s.shape == (3, 4) and s.dtype == np.float32
    np.testing.assert_allclose(s.sum(1), 1.0, atol=1e-6)
    cos = TEXTS @ LABELS.T
    for row_s, row_c in zip(s, cos):
        assert list(np.argsort(-row_s, kind="stable")) == list(np.argsort(-row_c, kind="stable"))
    assert s[0].argmax() == 0 and s[1].argmax() == 2 and s[2].argmax() == 3


def test_softmax_matches_formula_and_scale_sharpens() -> None:
    cos = TEXTS @ LABELS.T
    expected = np.exp(20 * cos) / np.exp(20 * cos).sum(1, keepdims=True)
    np.testing.assert_allclose(zero_shot.scores(TEXTS, LABELS, multi_label=False, **KW), expected, rtol=1e-5)
    soft = zero_shot.scores(TEXTS, LABELS, logit_scale=2.0, multi_label=False, threshold=0.3)
    sharp = zero_shot.scores(TEXTS, LABELS, logit_scale=100.0, multi_label=False, threshold=0.3)
    assert (sharp.max(1) > soft.max(1)).all()


def test_softmax_is_stable_at_huge_scale() -> None:
    s = zero_shot.scores(TEXTS, LABELS, logit_scale=1e6, multi_label=False, threshold=0.0)
    assert np.isfinite(s).all()
    np.testing.assert_allclose(s.sum(1), 1.0, atol=1e-6)
    m = zero_shot.scores(TEXTS, LABELS, logit_scale=1e6, multi_label=True, threshold=0.5)
    assert np.isfinite(m).all() and set(np.unique(m)) <= {0.0, 1.0}


def test_multi_label_is_sigmoid_of_shifted_cosine() -> None:
    m = zero_shot.scores(TEXTS, LABELS, multi_label=True, **KW)
    cos = TEXTS @ LABELS.T
    np.testing.assert_allclose(m, 1 / (1 + np.exp(-20 * (cos - 0.3))), rtol=1e-5)
    # Above 0.5 exactly where the cosine is above the threshold.
    assert ((m > 0.5) == (cos > 0.3)).all()
    # Several labels may apply: text 1 is close to labels 2 and 3.
    assert (m[1] > 0.5).sum() == 2


def test_multi_label_scores_are_independent_of_the_other_labels() -> None:
    full = zero_shot.scores(TEXTS, LABELS, multi_label=True, **KW)
    for j in range(4):
        alone = zero_shot.scores(TEXTS, LABELS[j:j + 1], multi_label=True, **KW)
        np.testing.assert_allclose(alone[:, 0], full[:, j], rtol=1e-6)
    # Adding a label changes nothing for the others (but does for the softmax).
    more = np.vstack([LABELS, unit(1, 1, 1, 1)])
    np.testing.assert_allclose(zero_shot.scores(TEXTS, more, multi_label=True, **KW)[:, :4], full, rtol=1e-6)
    soft = zero_shot.scores(TEXTS, LABELS, multi_label=False, **KW)
    assert not np.allclose(zero_shot.scores(TEXTS, more, multi_label=False, **KW)[:, :4], soft)


def test_grouped_softmax_sums_to_one_per_group() -> None:
    groups = ["mood", "mood", "genre", "genre"]
    g = zero_shot.grouped_scores(TEXTS, LABELS, groups, multi_label=False, **KW)
    np.testing.assert_allclose(g[:, :2].sum(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(g[:, 2:].sum(1), 1.0, atol=1e-6)
    # Each group is the plain softmax over its own labels.
    np.testing.assert_allclose(g[:, :2], zero_shot.scores(TEXTS, LABELS[:2], multi_label=False, **KW), rtol=1e-6)
    np.testing.assert_allclose(g[:, 2:], zero_shot.scores(TEXTS, LABELS[2:], multi_label=False, **KW), rtol=1e-6)


def test_grouped_softmax_with_interleaved_groups() -> None:
    groups = ["mood", "genre", "mood", "genre"]
    g = zero_shot.grouped_scores(TEXTS, LABELS, groups, multi_label=False, **KW)
    np.testing.assert_allclose(g[:, [0, 2]].sum(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(g[:, [1, 3]].sum(1), 1.0, atol=1e-6)


def test_grouped_multi_label_is_per_label_sigmoid() -> None:
    groups = ["mood", "mood", "genre", "genre"]
    g = zero_shot.grouped_scores(TEXTS, LABELS, groups, multi_label=True, **KW)
    np.testing.assert_allclose(g, zero_shot.scores(TEXTS, LABELS, multi_label=True, **KW), rtol=1e-6)


def test_grouped_rejects_wrong_group_count() -> None:
    with pytest.raises(ValueError):
        zero_shot.grouped_scores(TEXTS, LABELS, ["mood"], multi_label=False, **KW)


def test_scores_from_logits_matches_scores() -> None:
    logits = 20.0 * (TEXTS @ LABELS.T)  # what the creative-labels ONNX head outputs
    for multi in (False, True):
        np.testing.assert_allclose(
            zero_shot.scores_from_logits(logits, logit_scale=20.0, multi_label=multi, threshold=0.3),
            zero_shot.scores(TEXTS, LABELS, multi_label=multi, **KW), rtol=1e-5)


def test_single_text_and_single_label_shapes() -> None:
    s = zero_shot.scores(TEXTS[0], LABELS, multi_label=False, **KW)
    assert s.shape == (1, 4)
    one = zero_shot.scores(TEXTS, LABELS[:1], multi_label=False, **KW)
    np.testing.assert_allclose(one, 1.0)
    assert zero_shot.scores(TEXTS, np.zeros((0, 4), np.float32), multi_label=False, **KW).shape == (3, 0)


def test_label_embedding_is_normalised_mean_of_prompt_embeddings() -> None:
    table = {"a": unit(1, 0, 0), "b": unit(0, 1, 0), "c": unit(1, 1, 0)}
    calls: list[list[str]] = []

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return np.stack([table[t] for t in texts])

    v = zero_shot.label_embedding(embed, ["a", "b"])
    np.testing.assert_allclose(v, unit(1, 1, 0), rtol=1e-6)
    assert v.shape == (3,)
    assert np.isclose(np.linalg.norm(v), 1.0)
    assert calls == [["a", "b"]]  # one batched call
    np.testing.assert_allclose(zero_shot.label_embedding(embed, ["c"]), unit(1, 1, 0), rtol=1e-6)
    with pytest.raises(ValueError):
        zero_shot.label_embedding(embed, [])


def test_label_embedding_renormalises_unnormalised_embeddings() -> None:
    v = zero_shot.label_embedding(lambda ts: np.array([[10.0, 0.0], [0.0, 0.1]]), ["x", "y"])
    np.testing.assert_allclose(v, unit(1, 1), rtol=1e-6)


def test_center_groups_removes_the_shared_component_per_group() -> None:
    shared = unit(0, 0, 0, 1)
    moods = np.stack([unit(1, 0, 0, 3), unit(-1, 0, 0, 3)])  # far apart, but both mostly "shared"
    h = np.sqrt(3) / 2  # three genre directions 120 degrees apart, same share of the common direction
    genres = np.stack([unit(0, 1, 0, 2), unit(0, -0.5, h, 2), unit(0, -0.5, -h, 2)])
    groups = ["mood", "mood", "genre", "genre", "genre"]
    c = zero_shot.center_groups(np.vstack([moods, genres]), groups)
    np.testing.assert_allclose(np.linalg.norm(c, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(c[:, 3], 0.0, atol=1e-6)  # the common direction is gone
    np.testing.assert_allclose(c[0], unit(1, 0, 0, 0), atol=1e-6)
    np.testing.assert_allclose(c[1], unit(-1, 0, 0, 0), atol=1e-6)
    # A text that only carries the shared direction no longer scores high on every label.
    before = zero_shot.scores(shared, np.vstack([moods, genres]), multi_label=True, **KW)
    after = zero_shot.scores(shared, c, multi_label=True, **KW)
    assert (before > 0.5).all() and (after < 0.5).all()
    # Order within a group for a text along one label is kept.
    t = unit(1, 0.1, 0, 3)
    assert zero_shot.cosine(t, c[:2]).argmax() == zero_shot.cosine(t, moods).argmax() == 0
    with pytest.raises(ValueError):
        zero_shot.center_groups(np.vstack([moods, genres]), ["mood"] * 4 + ["genre"])  # a group of one
    with pytest.raises(ValueError):
        zero_shot.center_groups(moods, ["mood"])


def test_hypotheses_fill_the_template() -> None:
    assert zero_shot.hypotheses(["jazz", "r&b"], "Music: {}!") == ["Music: jazz!", "Music: r&b!"]
    assert zero_shot.hypotheses(["jazz"], "") == [zero_shot.DEFAULT_TEMPLATE.replace("{}", "jazz")]
    assert zero_shot.hypothesis("{x} is {}", "y") == "{x} is y"  # other braces are literal
    with pytest.raises(ValueError):
        zero_shot.hypothesis("no placeholder", "jazz")


def test_ranked_orders_best_first_with_groups() -> None:
    out = zero_shot.ranked(np.array([0.1, 0.7, 0.2]), ["a", "b", "c"], ["mood", "genre", "mood"])
    assert [x[0] for x in out] == ["b", "c", "a"]
    assert out[0] == ("b", pytest.approx(0.7), "genre")
    assert [x[2] for x in zero_shot.ranked(np.array([0.5, 0.5]), ["x", "y"])] == ["", ""]
    assert [x[0] for x in zero_shot.ranked(np.array([0.5, 0.5]), ["x", "y"])] == ["x", "y"]  # ties: label order
