"""The pool and its scores as shards on a disk or an S3 bucket the scoring cluster can reach.

Why shards: a pool worth a cluster has millions of sentences. Handing it to Ray from the driver's
memory (as record dicts) makes the driver, not the cluster, the limit. Instead the driver copies the
prepared pool into shards of consecutive lines (bytes, unparsed), each worker reads its own shard and
writes its scores back as a shard of the same name, and the driver merges the score shards in pool
order, one at a time. Its memory stays flat however large the pool.

Where (``score.ray_shards``):

* unset: ``.nerloop/ray-shards/`` in the project, for a cluster whose nodes share this disk (one
  machine, or a shared filesystem mounted at the same path on every node);
* a folder: the same, at that path;
* ``s3://bucket/prefix``: a bucket every node reaches, through the project's DVC remote settings
  (``endpointurl`` and credentials as ``dvc push`` uses them, from ``.dvc/config``, ``.dvc/config.local``
  or the driver's ``AWS_*`` environment) when the default remote is on S3, else through the environment.

Each run writes under its own folder (``<where>/<run id>/``) and removes it when done.
"""

from __future__ import annotations

import io
import itertools
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nerloop.data.files import parse_record
from nerloop.data.records import Record
from nerloop.errors import NerloopError

DEFAULT_FOLDER = Path(".nerloop/ray-shards")  # git-ignored, like the rest of .nerloop/


@dataclass
class Shard:
    """Consecutive lines of the pool file: ``lines`` of them from line ``first`` (0-based)."""

    first: int
    lines: int

    @property
    def name(self) -> str:  # zero-padded, so names sort in pool order
        return f"{self.first:012d}"


@dataclass
class ShardStore:
    """An fsspec filesystem (local disk or S3) and this run's folder on it.

    Pickled to every Ray actor (an S3 filesystem with its endpoint and credentials, through Ray's object
    store, never through a log or params), so workers read and write where the driver does.
    """

    fs: Any
    root: str

    def path(self, kind: str, shard: Shard) -> str:
        suffix = {"pool": "jsonl", "scores": "parquet", "embeddings": "npy"}[kind]
        return f"{self.root}/{kind}-{shard.name}.{suffix}"

    def remove(self) -> None:
        """Delete this run's folder (what a finished or failed run leaves behind)."""
        if self.fs.exists(self.root):
            self.fs.rm(self.root, recursive=True)


def s3_filesystem() -> Any:
    """An S3 filesystem set up as the project's default DVC remote is (endpoint, region, and credentials from
    ``.dvc/config.local``), so shards travel as ``dvc push`` does; without an S3 default remote, from the
    environment alone (``AWS_*``). Credentials the driver finds in the environment or ``~/.aws`` are resolved
    here and travel with the filesystem, so worker nodes need none of their own."""
    import botocore.session
    import s3fs
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    args: dict[str, Any] = {}
    try:
        with Repo(".") as repo:
            remote_fs = repo.cloud.get_remote().fs
        if isinstance(remote_fs.fs, s3fs.S3FileSystem):
            args = dict(remote_fs.fs_args)
    except DvcException:  # no DVC repo here, or no default remote
        pass
    if not args.get("key") and (found := botocore.session.get_session().get_credentials()) is not None:
        frozen = found.get_frozen_credentials()
        args.update(key=frozen.access_key, secret=frozen.secret_key, token=frozen.token)
    return s3fs.S3FileSystem(**args)


def shard_store(where: str | None) -> ShardStore:
    """A fresh run folder under ``where`` (``score.ray_shards``: None, a folder, or an ``s3://`` URL)."""
    run_id = uuid.uuid4().hex[:12]
    if where and where.startswith("s3://"):
        return ShardStore(s3_filesystem(), f"{where.removeprefix('s3://').rstrip('/')}/{run_id}")
    import fsspec

    folder = (Path(where) if where else DEFAULT_FOLDER).resolve() / run_id
    return ShardStore(fsspec.filesystem("file", auto_mkdir=True), str(folder))


def count_lines(pool_file: Path) -> int:
    """Lines in the pool file, counted without parsing them."""
    with open(pool_file, "rb") as fh:
        return sum(1 for _ in fh)


def write_pool_shards(pool_file: Path, store: ShardStore, lines_per_shard: int) -> list[Shard]:
    """Copy the pool file into shards of ``lines_per_shard`` consecutive lines, byte for byte."""
    shards = []
    with open(pool_file, "rb") as src:
        while chunk := list(itertools.islice(src, lines_per_shard)):
            shard = Shard(shards[-1].first + shards[-1].lines if shards else 0, len(chunk))
            with store.fs.open(store.path("pool", shard), "wb") as out:
                out.writelines(chunk)
            shards.append(shard)
    return shards


def kept_lines(pool_file: Path, excluded: set[str], subsample: int, seed: int) -> np.ndarray | None:
    """With ``score.subsample``: the pool lines (ascending) the subsample keeps, drawn as the local engine
    draws it (:func:`~nerloop.selection.scoring.subsample_positions`); None without one (keep every line
    not excluded). Reads only the ids, a line at a time."""
    from nerloop.selection.scoring import subsample_positions

    if not subsample:
        return None
    left = []
    with open(pool_file, "rb") as fh:
        for n, line in enumerate(fh):
            if line.strip() and json.loads(line)["id"] not in excluded:
                left.append(n)
    lines = np.asarray(left, dtype=np.int64)
    keep = subsample_positions(len(lines), subsample, seed)
    return lines if keep is None else lines[keep]


def read_pool_shard(store: ShardStore, shard: Shard, excluded: set[str] | frozenset[str],
                    keep: np.ndarray | None, pool_name: str) -> list[Record]:
    """The records of ``shard`` that are scored: not excluded and, with a subsample, kept; in pool order.

    A line that is not a record fails naming the pool file and line, as reading the pool locally does.
    """
    with store.fs.open(store.path("pool", shard), "rb") as fh:
        lines = fh.read().splitlines()
    wanted = None if keep is None else set(keep[(keep >= shard.first) & (keep < shard.first + shard.lines)].tolist())
    out = []
    for k, line in enumerate(lines):
        if not line.strip() or (wanted is not None and shard.first + k not in wanted):
            continue
        rec = parse_record(line, pool_name, shard.first + k + 1)
        if rec.id not in excluded:
            out.append(rec)
    return out


def write_score_shard(store: ShardStore, shard: Shard, rows: list[dict], embeddings: list[np.ndarray],
                      columns: list[str]) -> None:
    """A shard's scores (rows in pool order) and its embeddings (float32, as the model gave them)."""
    buf = io.BytesIO()
    pd.DataFrame(rows, columns=columns).to_parquet(buf, index=False)
    with store.fs.open(store.path("scores", shard), "wb") as fh:
        fh.write(buf.getvalue())
    buf = io.BytesIO()
    np.save(buf, np.stack(embeddings).astype(np.float32) if embeddings else np.zeros((0, 0), np.float32))
    with store.fs.open(store.path("embeddings", shard), "wb") as fh:
        fh.write(buf.getvalue())


def merged_scores(store: ShardStore, shards: list[Shard]) -> Iterator[tuple[int, dict, np.ndarray]]:
    """``(index, row, embedding)`` over all score shards in pool order, one shard in memory at a time
    (``shards``: ``first`` names the shard, ``lines`` is ignored: a shard holds the rows it scored)."""
    i = 0
    for shard in sorted(shards, key=lambda s: s.first):
        try:
            with store.fs.open(store.path("scores", shard), "rb") as fh:
                table = pd.read_parquet(io.BytesIO(fh.read()))
            with store.fs.open(store.path("embeddings", shard), "rb") as fh:
                embeddings = np.load(io.BytesIO(fh.read()))
        except FileNotFoundError as exc:
            raise NerloopError(f"the scores of the shard from pool line {shard.first + 1} are missing from "
                               f"{store.root}: {exc}") from None
        for row, embedding in zip(table.to_dict("records"), embeddings, strict=True):
            yield i, row, embedding
            i += 1
