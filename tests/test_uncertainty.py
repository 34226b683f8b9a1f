import math

import numpy as np
import pytest

from nerloop.selection import uncertainty as u

LABELS = ["O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"]


def one_hot(indices: list[int], n_labels: int = len(LABELS), confidence: float = 1.0) -> np.ndarray:
    """Rows putting ``confidence`` on the given label and spreading the rest evenly."""
    rest = (1.0 - confidence) / (n_labels - 1)
    probs = np.full((len(indices), n_labels), rest)
    probs[np.arange(len(indices)), indices] = confidence
    return probs


def test_entropy_of_uniform_and_one_hot_rows():
    uniform = np.array([[0.5, 0.5]])
    assert u.entropy_mean(uniform) == pytest.approx(math.log(2))
    assert u.entropy_mean(np.array([[1.0, 0.0]])) == pytest.approx(0.0)
    two_words = np.array([[0.5, 0.5], [1.0, 0.0]])
    assert u.entropy_mean(two_words) == pytest.approx(math.log(2) / 2)
    assert u.entropy_max(two_words) == pytest.approx(math.log(2))


def test_least_confidence_and_mnlp_by_hand():
    probs = np.array([[0.9, 0.1], [0.4, 0.6]])
    assert u.least_confidence(probs) == pytest.approx(1 - 0.9 * 0.6)
    assert u.mnlp(probs) == pytest.approx(-(math.log(0.9) + math.log(0.6)) / 2)


def test_margin_uses_the_smallest_margin_in_the_sentence():
    probs = np.array([[0.7, 0.2, 0.1], [0.5, 0.1, 0.4]])  # margins 0.5 and 0.1
    assert u.margin(probs) == pytest.approx(1 - 0.1)
    assert u.margin(one_hot([0, 0])) == pytest.approx(0.0)


def test_all_measures_rank_the_confused_sentence_higher():
    sure = one_hot([0, 1, 2, 0], confidence=0.98)
    unsure = one_hot([0, 1, 2, 0], confidence=0.5)
    for name, measure in u.MEASURES.items():
        assert measure(unsure, LABELS) > measure(sure, LABELS), name


def test_log_of_zero_is_guarded():
    probs = np.array([[1.0, 0.0, 0.0]])
    assert np.isfinite(u.mnlp(probs))
    assert u.entropy_mean(probs) == 0.0
    assert np.isfinite(u.mnlp(np.array([[0.0, 0.0, 0.0]])))


def test_empty_sentence_scores_zero():
    empty = np.zeros((0, len(LABELS)))
    assert u.score_sentence(empty, LABELS, mc_probs=np.zeros((3, 0, len(LABELS)))) == {
        name: 0.0 for name in [*u.MEASURES, *u.MC_MEASURES]
    }
    assert u.mnlp(np.array([])) == 0.0


def test_boundary_averages_entropy_next_to_entity_edges():
    # Argmax tags: O O B-Chemical I-Chemical O O -> entity on words 2..3; boundary words 1..4.
    probs = one_hot([0, 0, 1, 2, 0, 0])
    probs[0] = [0.5, 0.5, 0, 0, 0]  # far from the entity: must not count
    probs[1] = [0.5, 0.5, 0, 0, 0]  # next to the entity start: counts
    expected = (math.log(2) + 0 + 0 + 0) / 4
    assert u.boundary(probs, LABELS) == pytest.approx(expected)


def test_boundary_is_zero_without_predicted_entities():
    probs = one_hot([0, 0, 0], confidence=0.6)
    assert u.boundary(probs, LABELS) == 0.0


def test_boundary_treats_a_stray_inside_tag_as_an_entity():
    assert u.boundary_words(["O", "O", "I-Disease", "O", "O", "O"]).tolist() == [0, 1, 1, 1, 0, 0]


def test_boundary_checks_the_label_list():
    with pytest.raises(ValueError, match="labels"):
        u.boundary(one_hot([0, 1]), LABELS[:3])


def test_bald_is_zero_when_passes_agree():
    probs = np.array([[0.6, 0.4], [0.5, 0.5]])
    assert u.bald(np.stack([probs, probs, probs])) == pytest.approx(0.0)


def test_bald_when_passes_disagree():
    # Two passes, each certain, of opposite labels: H(mean) = ln 2, mean H = 0 -> MI = ln 2.
    # Second word agrees in both passes -> MI = 0. Sentence mean = ln 2 / 2.
    mc = np.array([[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [1.0, 0.0]]])
    assert u.bald(mc) == pytest.approx(math.log(2) / 2)


def test_vote_entropy_by_hand():
    # Four passes, three labels. Word 0: votes 0, 0, 1, 2 -> shares 1/2, 1/4, 1/4 -> entropy 1.5 ln 2.
    # Word 1: all four vote 0 -> 0. Sentence mean = 0.75 ln 2.
    votes = [[0, 0], [0, 0], [1, 0], [2, 0]]
    mc = np.stack([one_hot(v, n_labels=3, confidence=0.6) for v in votes])
    assert u.vote_entropy(mc) == pytest.approx(0.75 * math.log(2))


def test_vote_entropy_counts_votes_not_confidence():
    # Every pass votes label 0 on both words, each with a different confidence: the committee agrees
    # (vote entropy 0), though the soft probabilities differ (BALD > 0).
    mc = np.stack([one_hot([0, 0], n_labels=3, confidence=c) for c in (0.9, 0.6, 0.4)])
    assert u.vote_entropy(mc) == 0.0
    assert u.bald(mc) > 0.0
    # Two passes that split on every word: each word's entropy is ln 2, the maximum for T = 2.
    split = np.stack([one_hot([0, 1], n_labels=3), one_hot([1, 0], n_labels=3)])
    assert u.vote_entropy(split) == pytest.approx(math.log(2))


def test_vote_entropy_checks_the_shape():
    with pytest.raises(ValueError, match="T, n_words, n_labels"):
        u.vote_entropy(one_hot([0, 1]))


def test_score_sentence_includes_the_committee_measures_only_with_mc_passes():
    probs = one_hot([0, 1], confidence=0.8)
    assert set(u.score_sentence(probs, LABELS)) == set(u.MEASURES)
    scores = u.score_sentence(probs, LABELS, mc_probs=np.stack([probs, probs]))
    assert set(scores) == {*u.MEASURES, "bald", "vote_entropy"}
    assert scores["vote_entropy"] == 0.0  # two identical passes agree on every word


def test_score_sentences_adds_the_committee_columns_with_mc_passes():
    sentences = [one_hot([0, 1], confidence=0.7), one_hot([3], confidence=0.4)]
    mc = [np.stack([one_hot([0, 1]), one_hot([1, 1])]), np.stack([one_hot([3]), one_hot([3])])]
    batch = u.score_sentences(sentences, LABELS, mc)
    assert list(batch) == [*u.MEASURES, "bald", "vote_entropy"]
    assert batch["vote_entropy"].tolist() == pytest.approx([math.log(2) / 2, 0.0])


def test_score_sentences_matches_score_sentence():
    sentences = [one_hot([0, 1, 2], confidence=0.7), np.zeros((0, len(LABELS))), one_hot([3], confidence=0.4)]
    batch = u.score_sentences(sentences, LABELS)
    for i, probs in enumerate(sentences):
        for name, value in u.score_sentence(probs, LABELS).items():
            assert batch[name][i] == pytest.approx(value)


def test_type_mass_is_the_largest_word_probability_per_type():
    labels = ["O", "B-EVENT", "I-EVENT", "B-PER", "I-PER"]
    probs = np.array([[0.6, 0.2, 0.1, 0.1, 0.0],   # EVENT 0.3 on this word, never the argmax
                      [0.1, 0.0, 0.0, 0.8, 0.1]])
    assert u.type_mass(probs, labels) == {"EVENT": 0.3, "PER": 0.9}
    assert u.type_mass(np.zeros((0, 5)), labels) == {"EVENT": 0.0, "PER": 0.0}
    with pytest.raises(ValueError, match="label columns"):
        u.type_mass(probs, labels[:3])


def test_entity_ignores_doubt_about_plain_text():
    """Doubt between O and nothing else weighs nothing; the same doubt on a possible entity counts."""
    plain = np.array([[0.9, 0.1 / 4, 0.1 / 4, 0.1 / 4, 0.1 / 4]] * 5)  # sure-ish O everywhere
    name = np.vstack([plain[:4], [[0.3, 0.4, 0.0, 0.3, 0.0]]])  # one word: Chemical or Disease?
    assert u.entity(name, LABELS) > 2 * u.entity(plain, LABELS)
    # mean entropy sees that word diluted by the four plain ones; entity contrasts the two sentences far more
    assert u.entity(name, LABELS) / u.entity(plain, LABELS) > 2 * u.entropy_mean(name) / u.entropy_mean(plain)


def test_entity_by_hand_and_more_doubtful_names_score_higher():
    one = np.array([[1.0, 0, 0, 0, 0], [0.5, 0.5, 0, 0, 0]])  # weight 0.5 on a word of entropy ln 2
    assert u.entity(one, LABELS) == pytest.approx(0.5 * math.log(2) / 1.0)  # expected entity words floored at 1
    three = np.array([[0.5, 0.5, 0, 0, 0]] * 3)
    assert u.entity(three, LABELS) == pytest.approx(math.log(2))
    assert u.entity(three, LABELS) > u.entity(one, LABELS)
    with pytest.raises(ValueError, match="include 'O'"):
        u.entity(one, ["B-X", "I-X", "B-Y", "I-Y", "Z"])
