"""Label types deleted from a Doccano project: noticed at fetch, and the examples that may have lost spans.

Why this exists: deleting a label type in Doccano 1.8.4 (the project's Labels page, or the API) deletes every
span of that type with it, silently, and leaves the examples marked done. Without a check, the next fetch
would import such an example as complete, its entity tagged O. Doccano keeps no trace of a deleted type or
of the spans it took, so nerloop keeps its own: after each fetch it records, per project, the label types it
saw (by id), the examples marked done and the types their spans used (``<home>/label_types.json``, that is
``.doccano/label_types.json``, beside the server's data). At the next fetch a type is *deleted* when

* its id is gone from the project (any type nerloop saw there: its own, or one someone added and used), or
* a label-set type is missing while a pre-annotation in the project uses it (nerloop uploaded spans of that
  type, so the type existed; this works with no record at all, e.g. on another machine).

Which examples are in doubt (held back, never imported as complete):

* those whose spans used the type when nerloop last looked;
* every example marked done since nerloop last looked, or with no record of the project every example
  marked done: nerloop never saw their spans, so it cannot tell whether they used the type.

An example stays in doubt until someone marks it done again (its confirmation time changes), having put back
what was lost. A type someone adds and deletes between two fetches leaves no trace nerloop can see.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nerloop.data.files import write_json
from nerloop.errors import DataError

FILE = "label_types.json"


@dataclass
class Doubt:
    """Why an example marked done may have lost spans: the deleted types, and whether nerloop saw them on it."""

    confirmed_at: str  # the confirmation in doubt: marking the example done again ends the doubt
    types: list[str]
    seen: bool  # True: nerloop saw a span of a deleted type on it; False: it never saw its spans


@dataclass
class Look:
    """What one fetch saw in one project (JSON keys are strings; ids are ints here)."""

    project: str  # "<id> <created_at>": a project recreated under the same name is another project
    types: dict[int, str] = field(default_factory=dict)  # label type id -> name
    done: dict[int, str] = field(default_factory=dict)  # example id -> confirmed_at, of those marked done
    used: dict[int, list[int]] = field(default_factory=dict)  # example id -> label type ids of its spans
    doubt: dict[int, Doubt] = field(default_factory=dict)  # examples held back for a deleted type


def load(home: Path) -> dict[str, Look]:
    """Every project's last look, by project name (empty when nerloop never fetched from this home)."""
    path = Path(home) / FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {name: Look(
            project=str(v["project"]),
            types={int(k): str(n) for k, n in v["types"].items()},
            done={int(k): str(t) for k, t in v["done"].items()},
            used={int(k): [int(i) for i in ids] for k, ids in v["used"].items()},
            doubt={int(k): Doubt(**d) for k, d in v["doubt"].items()},
        ) for name, v in data.items()}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DataError(path, None, f"corrupt record of the Doccano label types nerloop saw ({exc}); delete it: "
                        "the next fetch then holds back, in a project that lost a label-set type, every example "
                        "marked done (it cannot tell which had spans of it)") from None


def save(home: Path, looks: dict[str, Look]) -> None:
    """Write every project's look (atomically)."""
    write_json(Path(home) / FILE, {name: asdict(look) for name, look in sorted(looks.items())})


def deleted_types(before: Look | None, types: dict[int, str], label_set: list[str],
                  pre_types: set[str]) -> dict[str, int | None]:
    """Label types deleted since nerloop last looked: name -> the id it had (None: known by name only).

    ``types`` are the project's types now (id -> name); ``pre_types`` the label-set types that the
    project's pre-annotations use (uploaded by nerloop, so they existed in the project).
    """
    gone: dict[str, int | None] = {n: i for i, n in (before.types if before else {}).items() if i not in types}
    for name in sorted((set(label_set) & pre_types) - set(types.values()) - gone.keys()):
        gone[name] = None
    return gone


def in_doubt(before: Look | None, gone: dict[str, int | None], done: dict[int, str]) -> dict[int, Doubt]:
    """Examples marked done (``done``: example id -> confirmed_at) whose spans may have gone with a deleted type.

    Doubts recorded before last while the example is not marked done again; new ones come from ``gone``.
    """
    out = {eid: d for eid, d in (before.doubt if before else {}).items() if done.get(eid) == d.confirmed_at}
    if not gone:
        return out
    for eid, at in done.items():
        # the type ids its spans used when nerloop last saw it marked done, as it still is; None: never seen so
        seen = before.used.get(eid) if before is not None and before.done.get(eid) == at else None
        types = [n for n, i in gone.items() if seen is None or i is None or i in seen]
        if types:
            old = out.get(eid)
            out[eid] = Doubt(at, sorted({*types, *(old.types if old else [])}),
                             seen is not None and (old.seen if old else True))
    return out
