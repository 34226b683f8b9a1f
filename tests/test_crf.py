"""The CRF head's math against brute force on tiny cases: likelihood, marginals, Viterbi, IOB2 constraints."""

from __future__ import annotations

import itertools

import torch

from nerloop.model.crf import CRF, FORBIDDEN, allowed, word_emissions

LABELS = ["O", "B-X", "I-X", "B-Y", "I-Y"]


def brute(crf: CRF, em: torch.Tensor) -> dict[tuple[int, ...], float]:
    """The unnormalised log-score of every tag sequence of one sentence."""
    trans, start = crf._scores()
    out = {}
    for seq in itertools.product(range(len(LABELS)), repeat=em.size(0)):
        s = start[seq[0]] + em[0, seq[0]] + crf.end[seq[-1]]
        s = s + sum(trans[a, b] + em[t + 1, b] for t, (a, b) in enumerate(itertools.pairwise(seq)))
        out[seq] = float(s)
    return out


def random_crf(seed: int) -> CRF:
    torch.manual_seed(seed)
    crf = CRF(LABELS)
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    return crf


def test_iob2_forbids_an_inside_tag_after_o_or_another_type() -> None:
    trans, start = allowed(LABELS)
    assert not trans[0, 2] and not trans[3, 2] and trans[1, 2] and trans[2, 2] and not start[4] and start[3]


def test_likelihood_marginals_and_viterbi_match_brute_force_with_padding() -> None:
    crf = random_crf(0)
    torch.manual_seed(1)
    em = torch.randn(2, 4, len(LABELS))
    mask = torch.tensor([[True] * 4, [True, True, True, False]])  # the second sentence has 3 words
    tags = torch.tensor([[1, 2, 0, 3], [3, 4, 4, 0]])
    nll = crf.nll(em, tags, mask)
    marg = crf.marginals(em, mask)
    paths = crf.viterbi(em, mask)
    expected_nll = 0.0
    for b, n in enumerate((4, 3)):
        scores = brute(crf, em[b, :n])
        log_z = torch.logsumexp(torch.tensor(list(scores.values())), 0)
        expected_nll += float(log_z) - scores[tuple(tags[b, :n].tolist())]
        probs = {s: float(torch.exp(torch.tensor(v) - log_z)) for s, v in scores.items()}
        for t in range(n):
            for j in range(len(LABELS)):
                want = sum(p for s, p in probs.items() if s[t] == j)
                assert abs(float(marg[b, t, j]) - want) < 1e-4
        assert tuple(paths[b]) == max(scores, key=scores.get) and len(paths[b]) == n
    assert abs(float(nll) - expected_nll / 2) < 1e-4
    assert float(marg[1, 3].sum()) == 0.0  # padding carries no probability


def test_decoding_never_yields_an_invalid_sequence_even_when_emissions_ask_for_it() -> None:
    crf = CRF(LABELS)  # zero scores: the emissions alone would pick I-X first
    em = torch.full((1, 3, len(LABELS)), -5.0)
    em[0, :, 2] = 5.0
    assert crf.viterbi(em, torch.ones(1, 3, dtype=torch.bool)) == [[1, 2, 2]]
    assert crf._scores()[0][0, 2] == FORBIDDEN


def test_word_emissions_keep_first_subwords_left_packed() -> None:
    logits = torch.arange(2 * 5 * 1, dtype=torch.float).view(2, 5, 1)
    first = torch.tensor([[False, True, False, True, False], [False, True, True, True, False]])
    em, mask = word_emissions(logits, first)
    assert em[..., 0].tolist() == [[1.0, 3.0, 0.0], [6.0, 7.0, 8.0]] and mask.tolist() == [[1, 1, 0], [1, 1, 1]]


def test_unobserved_words_are_marginalised_out_of_the_likelihood() -> None:
    """train.partial: mask with the CRF head: a word outside the window is summed over (brute force agrees),
    so its tag does not matter, and with every word observed the likelihood is the plain one."""
    crf = random_crf(2)
    torch.manual_seed(3)
    em = torch.randn(1, 4, len(LABELS))
    mask = torch.ones(1, 4, dtype=torch.bool)
    tags = torch.tensor([[1, 2, 0, 3]])
    observed = torch.tensor([[True, True, False, False]])
    scores = brute(crf, em[0])
    log_z = torch.logsumexp(torch.tensor(list(scores.values())), 0)
    log_num = torch.logsumexp(torch.tensor([v for s, v in scores.items() if s[:2] == (1, 2)]), 0)
    assert abs(float(crf.nll(em, tags, mask, observed)) - float(log_z - log_num)) < 1e-4
    other = torch.tensor([[1, 2, 3, 4]])  # other tags outside the window: the same loss
    assert abs(float(crf.nll(em, other, mask, observed)) - float(crf.nll(em, tags, mask, observed))) < 1e-6
    every = torch.ones(1, 4, dtype=torch.bool)
    assert abs(float(crf.nll(em, tags, mask, every)) - float(crf.nll(em, tags, mask))) < 1e-4
