"""Sentence-level uncertainty measures computed from a tagger's per-word softmax output.

Every measure takes ``probs`` of shape (n_words, n_labels): one softmax row per word (the word's
first subword), rows summing to 1. Every measure returns a float where HIGHER = MORE UNCERTAIN, so
all of them rank candidate sentences the same way and the query strategies can treat them alike.
An empty sentence (0 words) scores 0.0: there is nothing to learn from it.

The tagger is a per-token softmax without a CRF, so the model's best tag sequence is simply the
per-word argmax; least_confidence and mnlp use its probability.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from nerloop.data.tags import tags_to_spans

EPS = 1e-12  # floor for probabilities before log(): a softmax can round to exactly 0

Measure = Callable[[np.ndarray, Sequence[str]], float]


def _check_probs(probs: np.ndarray) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.size == 0:  # an empty sentence, however its caller shaped it
        return probs.reshape(0, probs.shape[-1] if probs.ndim == 2 else 0)
    if probs.ndim != 2:
        raise ValueError(f"probs must have shape (n_words, n_labels), got shape {probs.shape}")
    return probs


def token_entropy(probs: np.ndarray) -> np.ndarray:
    """Entropy (natural log) of each word's label distribution, shape (n_words,)."""
    probs = np.asarray(probs, dtype=np.float64)
    return -(probs * np.log(np.clip(probs, EPS, 1.0))).sum(axis=-1)


def entropy_mean(probs: np.ndarray) -> float:
    """Mean token entropy: overall confusion of the sentence, independent of its length."""
    probs = _check_probs(probs)
    return float(token_entropy(probs).mean()) if len(probs) else 0.0


def entropy_max(probs: np.ndarray) -> float:
    """Largest token entropy: one confusing word is enough to make a sentence worth labelling."""
    probs = _check_probs(probs)
    return float(token_entropy(probs).max()) if len(probs) else 0.0


def least_confidence(probs: np.ndarray) -> float:
    """1 - P(best tag sequence): the classic sequence-level measure (favours long sentences)."""
    probs = _check_probs(probs)
    if not len(probs):
        return 0.0
    return float(1.0 - np.prod(probs.max(axis=1)))


def margin(probs: np.ndarray) -> float:
    """1 - the smallest top-1/top-2 margin: the word where the model is closest to a coin flip."""
    probs = _check_probs(probs)
    if not len(probs):
        return 0.0
    if probs.shape[1] < 2:  # a single label cannot be confused with anything
        return 0.0
    top2 = np.sort(probs, axis=1)[:, -2:]
    return float(1.0 - (top2[:, 1] - top2[:, 0]).min())


def mnlp(probs: np.ndarray) -> float:
    """Negated Maximum Normalized Log-Probability (Shen et al. 2017): length-normalised least confidence."""
    probs = _check_probs(probs)
    if not len(probs):
        return 0.0
    return float(-np.log(np.clip(probs.max(axis=1), EPS, 1.0)).mean())


def boundary_words(tags: Sequence[str]) -> np.ndarray:
    """Boolean mask of words at or next to (±1) a predicted entity's first or last word.

    Entity boundaries are where taggers most often go wrong (one word too many or too few), so
    uncertainty there is more telling than uncertainty deep inside an entity or in plain text.
    """
    mask = np.zeros(len(tags), dtype=bool)
    for start, end, _ in tags_to_spans(tags):
        for edge in (start, end - 1):
            mask[max(edge - 1, 0) : edge + 2] = True
    return mask


def boundary(probs: np.ndarray, labels: Sequence[str]) -> float:
    """Mean token entropy over words at or next to a predicted entity boundary; 0.0 without entities.

    ``labels`` is the model's label list (column j of ``probs`` is ``labels[j]``). The argmax tags are
    decoded as IOB2; a stray I- (after O or another type) opens a new entity, as seqeval does.
    """
    probs = _check_probs(probs)
    if not len(probs):
        return 0.0
    if probs.shape[1] != len(labels):
        raise ValueError(f"probs has {probs.shape[1]} label columns but labels has {len(labels)} entries")
    tags = [labels[j] for j in probs.argmax(axis=1)]
    mask = boundary_words(tags)
    return float(token_entropy(probs[mask]).mean()) if mask.any() else 0.0


def entity(probs: np.ndarray, labels: Sequence[str]) -> float:
    """Token entropy weighted by each word's chance of being part of an entity (1 - P(O)).

    Entity-aware uncertainty: doubt about words the model is sure are plain text (O) weighs
    nothing, doubt on possible entities weighs fully. The weighted sum is divided by the expected
    number of entity words, floored at 1, so a sentence whose only candidate is one half-likely
    word scores below one with several doubtful names, and one with no candidate scores ~0.
    """
    probs = _check_probs(probs)
    if not len(probs):
        return 0.0
    if probs.shape[1] != len(labels) or "O" not in labels:
        raise ValueError(f"probs has {probs.shape[1]} label columns; labels must match them and include 'O'")
    weight = 1.0 - probs[:, list(labels).index("O")]
    return float((weight * token_entropy(probs)).sum() / max(weight.sum(), 1.0))


def bald(mc_probs: np.ndarray) -> float:
    """BALD: mean over words of the mutual information between the label and the dropout mask.

    ``mc_probs`` has shape (T, n_words, n_labels) from T MC-dropout passes. High when the passes
    disagree with each other (model uncertainty), low when they agree, even if each pass is unsure
    (noise in the data itself, which more labels would not fix).
    """
    mc_probs = np.asarray(mc_probs, dtype=np.float64)
    if mc_probs.ndim != 3:
        raise ValueError(f"mc_probs must have shape (T, n_words, n_labels), got shape {mc_probs.shape}")
    if mc_probs.shape[1] == 0:
        return 0.0
    entropy_of_mean = token_entropy(mc_probs.mean(axis=0))
    mean_of_entropy = token_entropy(mc_probs).mean(axis=0)
    # Mutual information is >= 0; clip tiny negative values from floating-point error.
    return float(np.clip(entropy_of_mean - mean_of_entropy, 0.0, None).mean())


def vote_entropy(mc_probs: np.ndarray) -> float:
    """Vote entropy of a query-by-committee: mean over words of the entropy of the passes' votes.

    ``mc_probs`` has shape (T, n_words, n_labels); each of the T MC-dropout passes is one committee
    member and votes for its argmax label on each word (Dagan & Engelson 1995). A word's vote entropy
    is -sum over labels of V/T * log(V/T), V being the votes a label got: 0 when the committee agrees,
    log(T) when every member votes differently. Unlike BALD it looks only at the votes, not at how
    sure each member is, so it is the hard-vote counterpart of BALD's soft disagreement.

    Averaged over words (Settles & Craven 2008's token-level variant) rather than taken over whole
    predicted sequences: with T passes a long sentence almost always has some word where two passes
    differ, so the sequence-level entropy saturates at log(T) and would rank by length; the word mean
    is comparable across lengths, as BALD and mnlp are.
    """
    mc_probs = np.asarray(mc_probs, dtype=np.float64)
    if mc_probs.ndim != 3:
        raise ValueError(f"mc_probs must have shape (T, n_words, n_labels), got shape {mc_probs.shape}")
    _, n_words, n_labels = mc_probs.shape
    if n_words == 0:
        return 0.0
    votes = np.eye(n_labels)[mc_probs.argmax(axis=2)]  # (T, n_words, n_labels): one-hot vote of each member
    return float(token_entropy(votes.mean(axis=0)).mean())


def type_mass(probs: np.ndarray, labels: Sequence[str]) -> dict[str, float]:
    """Per entity type, the largest probability any word gives to that type (its B- plus I- column).

    What the rare-type bonus acts on: a type the model has seen few or no examples of is
    rarely the argmax, so predicted spans alone would never let it in; a word where the
    type gets, say, 0.3 of the probability is still a good candidate to ask about.
    """
    probs = _check_probs(probs)
    if probs.shape[1] != len(labels):
        raise ValueError(f"probs has {probs.shape[1]} label columns but labels has {len(labels)} entries")
    types = sorted({lab[2:] for lab in labels if lab != "O"})
    if not len(probs):
        return dict.fromkeys(types, 0.0)
    out = {}
    for t in types:
        cols = [j for j, lab in enumerate(labels) if lab[2:] == t and lab != "O"]
        out[t] = round(float(probs[:, cols].sum(axis=1).max()), 5)
    return out


def _ignore_labels(measure: Callable[[np.ndarray], float]) -> Measure:
    """Give a measure that needs no label list the registry's (probs, labels) signature."""

    def wrapped(probs: np.ndarray, labels: Sequence[str]) -> float:
        return measure(probs)

    wrapped.__name__ = measure.__name__
    wrapped.__doc__ = measure.__doc__
    return wrapped


# name -> measure(probs, labels). BALD and vote entropy are not here: they need MC-dropout passes (MC_MEASURES).
MEASURES: dict[str, Measure] = {
    "entropy_mean": _ignore_labels(entropy_mean),
    "entropy_max": _ignore_labels(entropy_max),
    "least_confidence": _ignore_labels(least_confidence),
    "margin": _ignore_labels(margin),
    "mnlp": _ignore_labels(mnlp),
    "boundary": boundary,
    "entity": entity,
}


# name -> measure(mc_probs): the committee measures, computed only when score.mc_dropout_passes > 0.
MC_MEASURES: dict[str, Callable[[np.ndarray], float]] = {
    "bald": bald,
    "vote_entropy": vote_entropy,
}


def score_sentence(probs: np.ndarray, labels: Sequence[str], mc_probs: np.ndarray | None = None) -> dict[str, float]:
    """All measures for one sentence, keyed by name; MC_MEASURES only when MC-dropout passes are given."""
    scores = {name: measure(probs, labels) for name, measure in MEASURES.items()}
    if mc_probs is not None:
        scores |= {name: measure(mc_probs) for name, measure in MC_MEASURES.items()}
    return scores


def score_sentences(
    probs_list: Sequence[np.ndarray],
    labels: Sequence[str],
    mc_probs_list: Sequence[np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Score many sentences: name -> array with one value per sentence (ready for a DataFrame)."""
    if mc_probs_list is not None and len(mc_probs_list) != len(probs_list):
        raise ValueError(f"got {len(mc_probs_list)} MC-dropout arrays for {len(probs_list)} sentences")
    names = list(MEASURES) + (list(MC_MEASURES) if mc_probs_list is not None else [])
    out = {name: np.zeros(len(probs_list)) for name in names}
    for i, probs in enumerate(probs_list):
        mc = mc_probs_list[i] if mc_probs_list is not None else None
        for name, value in score_sentence(probs, labels, mc).items():
            out[name][i] = value
    return out
