"""A linear-chain CRF over word-level emissions, in torch itself (``model.head: crf``).

A softmax head labels each word on its own; a CRF scores whole tag sequences, so it learns that
I-PER follows B-PER or I-PER and never O (Lample et al., 2016; the seed guide's "Transformer-CRF
hybrids"). The encoder's per-word logits are the emissions; the CRF adds a learned transition
score between consecutive tags plus start and end scores. Transitions IOB2 forbids (O -> I-X,
B-X -> I-Y) are masked out, so decoding always yields valid IOB2.

* training: the negative log-likelihood of the gold sequence (forward algorithm, log space);
* prediction: the Viterbi path, and per-word *marginals* from forward-backward: the probability
  of each tag at each word under the whole-sequence model, which the uncertainty measures use
  where a softmax head gives its per-word probabilities.

All functions take emissions ``(batch, words, labels)`` and a boolean ``mask`` ``(batch, words)``
whose True entries are a prefix of each row (the sentence's words).
"""

from __future__ import annotations

import torch
from torch import nn

FORBIDDEN = -1e4  # a transition IOB2 does not allow: far below any learned score, finite for stable sums


def allowed(labels: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(transitions i -> j, start j) masks: False where IOB2 forbids it (I-X only after B-X or I-X)."""
    n = len(labels)
    trans = torch.ones(n, n, dtype=torch.bool)
    start = torch.ones(n, dtype=torch.bool)
    for j, to in enumerate(labels):
        if to.startswith("I-"):
            start[j] = False
            for i, frm in enumerate(labels):
                trans[i, j] = frm[2:] == to[2:] and frm[:2] in ("B-", "I-")
    return trans, start


class CRF(nn.Module):
    """Transition, start and end scores; IOB2-forbidden moves fixed at ``FORBIDDEN``."""

    def __init__(self, labels: list[str]) -> None:
        super().__init__()
        n = len(labels)
        self.transitions = nn.Parameter(torch.zeros(n, n))
        self.start = nn.Parameter(torch.zeros(n))
        self.end = nn.Parameter(torch.zeros(n))
        trans_ok, start_ok = allowed(labels)
        self.register_buffer("trans_ok", trans_ok, persistent=False)
        self.register_buffer("start_ok", start_ok, persistent=False)

    def _scores(self) -> tuple[torch.Tensor, torch.Tensor]:
        trans = torch.where(self.trans_ok, self.transitions, torch.full_like(self.transitions, FORBIDDEN))
        start = torch.where(self.start_ok, self.start, torch.full_like(self.start, FORBIDDEN))
        return trans, start

    def _alphas(self, em: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Forward log-scores (batch, words, labels); rows past a sentence's end repeat its last."""
        trans, start = self._scores()
        alpha = start + em[:, 0]
        out = [alpha]
        for t in range(1, em.size(1)):
            nxt = torch.logsumexp(alpha.unsqueeze(2) + trans.unsqueeze(0), dim=1) + em[:, t]
            alpha = torch.where(mask[:, t].unsqueeze(1), nxt, alpha)
            out.append(alpha)
        return torch.stack(out, 1)

    def nll(self, em: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor,
            observed: torch.Tensor | None = None) -> torch.Tensor:
        """Mean negative log-likelihood of the gold ``tags`` (batch, words) over the batch.

        ``observed`` (batch, words; None = every word) marks the words whose tag is known: a word outside a
        partly labelled sentence's window (``train.partial: mask``) is not. Its tag is then marginalised
        out, as in training a CRF on partial annotation (Tsuboi et al., 2008): the numerator sums over every
        path that agrees with the observed tags (a forward pass with the other tags' emissions at
        ``FORBIDDEN`` on observed words), so an unknown word is still a position in the chain, its
        neighbours' transitions still count, and no tag of it is favoured or penalised.
        """
        em = em.float()
        if observed is not None:
            log_z = torch.logsumexp(self._alphas(em, mask)[:, -1] + self.end, dim=1)
            pinned = torch.nn.functional.one_hot(tags, em.size(2)).bool() | ~observed.unsqueeze(2)
            clamped = torch.where(pinned, em, torch.full_like(em, FORBIDDEN))
            log_num = torch.logsumexp(self._alphas(clamped, mask)[:, -1] + self.end, dim=1)
            return (log_z - log_num).mean()
        trans, start = self._scores()
        batch = torch.arange(em.size(0), device=em.device)
        score = start[tags[:, 0]] + em[batch, 0, tags[:, 0]]
        for t in range(1, em.size(1)):
            step = trans[tags[:, t - 1], tags[:, t]] + em[batch, t, tags[:, t]]
            score = score + step * mask[:, t]
        last = tags[batch, mask.sum(1) - 1]
        score = score + self.end[last]
        log_z = torch.logsumexp(self._alphas(em, mask)[:, -1] + self.end, dim=1)
        return (log_z - score).mean()

    def marginals(self, em: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """P(tag at word t | sentence) for every word (batch, words, labels), by forward-backward."""
        em = em.float()
        trans, _ = self._scores()
        alphas = self._alphas(em, mask)
        lengths = mask.sum(1)
        betas = torch.zeros_like(em)
        beta = self.end.expand(em.size(0), -1)
        for t in range(em.size(1) - 1, -1, -1):
            at_end = (lengths - 1 == t).unsqueeze(1)
            inside = mask[:, t].unsqueeze(1)
            if t < em.size(1) - 1:
                stepped = torch.logsumexp(trans.unsqueeze(0) + (em[:, t + 1] + beta).unsqueeze(1), dim=2)
                beta = torch.where(at_end, self.end.expand_as(beta), torch.where(inside, stepped, beta))
            betas[:, t] = beta
        last = alphas[torch.arange(em.size(0), device=em.device), lengths - 1]  # each sentence's last word
        log_z = torch.logsumexp(last + self.end, dim=1)
        return torch.exp(alphas + betas - log_z.view(-1, 1, 1)) * mask.unsqueeze(2)

    def viterbi(self, em: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        """The best tag sequence of each sentence, as label indices (its own length)."""
        em = em.float()
        trans, start = self._scores()
        score = start + em[:, 0]
        back = []
        for t in range(1, em.size(1)):
            best, idx = (score.unsqueeze(2) + trans.unsqueeze(0)).max(dim=1)
            nxt = best + em[:, t]
            keep = mask[:, t].unsqueeze(1)
            score = torch.where(keep, nxt, score)
            back.append(torch.where(keep, idx, torch.arange(em.size(2), device=em.device).expand_as(idx)))
        score = score + self.end
        paths = []
        for b, n in enumerate(mask.sum(1).tolist()):
            tag = int(score[b].argmax())
            path = [tag]
            for t in range(n - 1, 0, -1):
                tag = int(back[t - 1][b, tag])
                path.append(tag)
            paths.append(path[::-1])
        return paths


def word_emissions(logits: torch.Tensor, first: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Subword logits -> word emissions and mask: keep the positions where ``first`` is True, left-packed."""
    counts = first.sum(1)
    width = max(int(counts.max()) if counts.numel() else 0, 1)
    em = logits.new_zeros(logits.size(0), width, logits.size(2))
    mask = torch.zeros(logits.size(0), width, dtype=torch.bool, device=logits.device)
    for b in range(logits.size(0)):
        n = int(counts[b])
        em[b, :n] = logits[b, first[b]]
        mask[b, :n] = True
    return em, mask
