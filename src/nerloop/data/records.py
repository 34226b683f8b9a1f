"""The canonical sentence record that every stage reads and writes.

Every input format (CoNLL, JSONL, plain text) is turned into a ``Record`` by
``nerloop.data.formats``; every output is written from one. A record's id is derived
from its normalised text, so the same sentence gets the same id whatever file it
came from: this is what lets ``prepare`` drop duplicates and lets the ledger and
the annotation backends recognise a sentence they have already seen.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Any

_SPACES = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """NFKC-normalise and collapse whitespace: the text identity used for ids and dedup."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def sentence_id(text: str) -> str:
    """Stable 16-hex-digit id of a sentence, from its normalised text."""
    return hashlib.sha1(normalise_text(text).encode("utf-8")).hexdigest()[:16]


def join_tokens(tokens: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """Join tokens with single spaces; return the text and each token's character span."""
    offsets: list[tuple[int, int]] = []
    pos = 0
    for tok in tokens:
        offsets.append((pos, pos + len(tok)))
        pos += len(tok) + 1
    return " ".join(tokens), offsets


@dataclass
class Record:
    """One sentence: tokens with character offsets into ``text``, and IOB2 tags if labelled.

    ``tags`` is ``None`` for an unlabelled (pool) sentence. ``source`` names where the
    sentence came from (``file:line``) so errors and reports can point back to it.
    ``meta`` holds free extras (cycle, scores, document id, ...).
    """

    id: str
    tokens: list[str]
    text: str
    offsets: list[tuple[int, int]]
    tags: list[str] | None = None
    source: str = ""
    doc_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_tokens(
        cls,
        tokens: list[str],
        tags: list[str] | None = None,
        *,
        source: str = "",
        doc_id: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Record:
        """Build a record whose text is the tokens joined by single spaces."""
        text, offsets = join_tokens(tokens)
        return cls(
            id=sentence_id(text),
            tokens=list(tokens),
            text=text,
            offsets=offsets,
            tags=list(tags) if tags is not None else None,
            source=source,
            doc_id=doc_id,
            meta=dict(meta or {}),
        )

    @property
    def labelled(self) -> bool:
        return self.tags is not None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["offsets"] = [list(o) for o in self.offsets]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Record:
        return cls(
            id=d["id"],
            tokens=list(d["tokens"]),
            text=d["text"],
            offsets=[tuple(o) for o in d["offsets"]],
            tags=list(d["tags"]) if d.get("tags") is not None else None,
            source=d.get("source", ""),
            doc_id=d.get("doc_id"),
            meta=dict(d.get("meta") or {}),
        )
