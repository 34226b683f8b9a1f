"""``score.engine: ray``: score the pool with an actor pool on a Ray cluster (Ray Data ``map_batches``).

Why Ray and how it is wired:

* Scoring is the step that outgrows one machine first: it is one forward pass per pool sentence,
  embarrassingly parallel, and a pool mined from a whole corpus has millions of sentences.
* The pool goes to the cluster as data, not as driver memory (``nerloop.selection.shards``): the
  driver copies the prepared pool file into shards of consecutive lines on a disk or S3 bucket the
  workers reach (``score.ray_shards``), and hands Ray only the shard names. Ray Data's ``map_batches``
  gives one shard at a time to :class:`PoolScorer`, a callable class: each actor loads the model once,
  reads its shard, drops the excluded sentences there (labelled, exported, and with ``score.subsample``
  those outside the subsample, drawn exactly as the local engine draws it), scores the rest with
  :func:`nerloop.selection.scoring.score_records` (the local engine's own code) and writes the rows
  and embeddings back as a shard of the same name. The model folder goes through the object store.
* An actor takes one GPU when the cluster has GPUs (``num_gpus=1``; ``load_model`` then puts the
  model on it), else ``score.ray_cpus_per_actor`` CPUs (Ray sets the actor's torch threads to that).
* The driver then merges the score shards in pool order, one shard in memory at a time, through the
  same writer as the local engine: same columns, same order, same files.

The cluster is the one named by ``RAY_ADDRESS`` (``ray start --head`` prints it). Without it the stage
stops and says what to do: quietly starting a one-machine Ray would only be a slower local engine.
``RAY_ADDRESS=local`` asks for exactly that throw-away local Ray, for trying the engine out. Every
node needs the same Python environment as the driver (``pip install "nerloop[ray]"``, same versions).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from nerloop.errors import NerloopError
from nerloop.params import Params
from nerloop.selection.shards import (
    Shard,
    ShardStore,
    count_lines,
    kept_lines,
    merged_scores,
    read_pool_shard,
    shard_store,
    write_pool_shards,
    write_score_shard,
)

log = logging.getLogger(__name__)

NO_ADDRESS = (
    "score.engine is ray but RAY_ADDRESS is not set: start a cluster (`ray start --head` on one machine, "
    "`ray start --address=HEAD:6379` on the others) and export RAY_ADDRESS=HEAD:6379 before `dvc repro` or "
    "`nerloop cycle`; RAY_ADDRESS=local starts a throw-away Ray on this machine; or set score.engine: local"
)
CONNECT_TIMEOUT_S = 10.0
ACTORS_START_TIMEOUT_S = 600
MAX_ROWS_PER_CALL = 16  # x score.batch_size: pool lines per shard (one map_batches call), so length-sorting pays


def ray_address() -> str:
    """The cluster to use, from ``RAY_ADDRESS``; a clear error when it is not set or cannot be reached.

    A ``host:port`` address is probed first (a TCP connect, ``CONNECT_TIMEOUT_S``): ``ray.init`` on an
    address where nothing listens retries for many minutes before it gives up.
    """
    address = os.environ.get("RAY_ADDRESS", "").strip()
    if not address:
        raise NerloopError(NO_ADDRESS)
    host, _, port = address.rpartition(":")
    if host and port.isdigit() and "://" not in address:
        try:
            socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
        except OSError as exc:
            raise NerloopError(f"RAY_ADDRESS={address}: no Ray cluster answers there ({exc}); is `ray start --head` "
                               "running on that machine, and is its port reachable from here?") from None
    return address


def actor_count(resources: dict[str, float], actors: int, cpus_per_actor: int) -> tuple[int, bool]:
    """(how many model copies, whether each gets a GPU) for the cluster's total ``resources``.

    ``actors`` > 0 is taken as asked; 0 means one per GPU, or, without GPUs, one per
    ``cpus_per_actor`` CPUs (at least one).
    """
    gpus = int(resources.get("GPU", 0))
    if actors:
        return actors, gpus > 0
    if gpus:
        return gpus, True
    return max(1, int(resources.get("CPU", 1)) // cpus_per_actor), False


def rows_per_call(n: int, batch_size: int, actors: int) -> int:
    """Pool lines per shard, which an actor scores in one call: up to ``MAX_ROWS_PER_CALL`` model batches, so
    sentences are length-sorted within a large group (little padding), but small enough that every actor
    gets work."""
    share = math.ceil(n / actors) if actors else n
    return max(1, min(batch_size * MAX_ROWS_PER_CALL, share))


def model_files(model_dir: Path) -> dict[str, bytes]:
    """Every file of a saved model folder, by relative path: shipped to actors through the object store."""
    return {str(p.relative_to(model_dir)): p.read_bytes() for p in sorted(model_dir.rglob("*")) if p.is_file()}


class PoolScorer:
    """A Ray Data actor: loads the model once, then scores one pool shard per call, from and to the shard store."""

    def __init__(self, model_ref: list[Any], context_ref: list[Any], batch_size: int, max_length: int,
                 mc_passes: int) -> None:
        import ray

        from nerloop.model.inference import load_model

        # wrapped in lists so Ray passes the refs, not the values
        files: dict[str, bytes] = ray.get(model_ref[0])
        self.store, self.excluded, self.keep, self.columns, self.pool_name = ray.get(context_ref[0])
        folder = Path(tempfile.mkdtemp(prefix="nerloop-ray-model-"))
        try:
            for name, data in files.items():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).write_bytes(data)
            self.model, self.tokenizer, self.labels = load_model(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        self.batch_size, self.max_length, self.mc_passes = batch_size, max_length, mc_passes
        self.node = ray.get_runtime_context().get_node_id()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from nerloop.selection.scoring import score_records

        scored = []
        for first, lines in zip(batch["first"], batch["lines"], strict=True):
            shard = Shard(int(first), int(lines))
            records = read_pool_shard(self.store, shard, self.excluded, self.keep, self.pool_name)
            rows: list[dict[str, Any]] = [{} for _ in records]
            embeddings: list[np.ndarray] = [np.empty(0)] * len(records)
            for i, row, emb in score_records(self.model, self.tokenizer, self.labels, records,
                                             batch_size=self.batch_size, max_length=self.max_length,
                                             mc_passes=self.mc_passes, progress=False,
                                             word_conf="word_conf" in self.columns):
                rows[i], embeddings[i] = row, emb
            write_score_shard(self.store, shard, rows, embeddings, self.columns)
            scored.append(len(records))
        return {"first": batch["first"], "lines": batch["lines"], "scored": np.asarray(scored, dtype=np.int64),
                "node": np.array([self.node] * len(scored), dtype=object)}


@contextlib.contextmanager
def score_on_ray(pool_file: Path, excluded: set[str], subsample_seed: int, model_dir: Path,
                 params: Params) -> Iterator[tuple[int, Iterator[tuple[int, dict, np.ndarray]]]]:
    """Score the pool file on the Ray cluster; yields ``(rows scored, their (index, row, embedding) in pool order)``
    for :func:`nerloop.stages.score.write_scores`, then removes the run's shards.

    Checks up front (before any output is touched) that ray is installed and ``RAY_ADDRESS`` is set.
    """
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise NerloopError('score.engine is ray but ray is not installed: pip install -e ".[ray]"') from None
    address = ray_address()
    store = shard_store(params.score.ray_shards)
    try:
        shards = _score_shards(address, store, pool_file, excluded, subsample_seed, model_dir, params)
        yield sum(s.lines for s in shards), merged_scores(store, shards)
    finally:
        store.remove()


def _score_shards(address: str, store: ShardStore, pool_file: Path, excluded: set[str], subsample_seed: int,
                  model_dir: Path, params: Params) -> list[Shard]:
    """Shard the pool, score every shard on the cluster; returns the score shards (``lines`` = rows scored).

    Connects to the cluster for the duration of the run, then disconnects (the cluster is not ours to stop).
    """
    import ray
    import ray.data

    from nerloop.selection.scoring import row_columns

    sp = params.score
    ray.init(address=address, logging_level=logging.WARNING)
    try:
        actors, use_gpu = actor_count(ray.cluster_resources(), sp.ray_actors, sp.ray_cpus_per_actor)
        n_lines = count_lines(pool_file)
        per_call = rows_per_call(n_lines, sp.batch_size, actors)
        keep = kept_lines(pool_file, excluded, sp.subsample, subsample_seed)
        shards = write_pool_shards(pool_file, store, per_call)
        if not shards:  # an empty pool file: nothing for the cluster to do
            return []
        print(f"scoring {n_lines} pool lines on Ray ({address}): {actors} actor(s), "
              f"{'1 GPU' if use_gpu else f'{sp.ray_cpus_per_actor} CPU(s)'} each, {len(shards)} shard(s) of up to "
              f"{per_call} sentences in {store.root}", flush=True)
        ctx = ray.data.DataContext.get_current()
        # Start every actor (model loaded) before the first shard: the shards then spread over the whole pool
        # instead of queueing on the first actor up, and a pool the cluster cannot hold fails with Ray's message
        # after ACTORS_START_TIMEOUT_S rather than waiting forever.
        ctx.wait_for_min_actors_s = ACTORS_START_TIMEOUT_S
        # A shard is a name; scoring it costs seconds: where an actor runs matters more than where the name lies.
        ctx.execution_options.actor_locality_enabled = False
        names = ray.data.from_items([{"first": s.first, "lines": s.lines} for s in shards],
                                    override_num_blocks=len(shards))
        context_ref = ray.put((store, frozenset(excluded), keep, row_columns(sp.mc_dropout_passes > 0,
                                                                            params.select.unit == "window"),
                               str(pool_file)))
        model_ref = ray.put(model_files(Path(model_dir)))
        done = names.map_batches(
            PoolScorer,
            fn_constructor_kwargs={"model_ref": [model_ref], "context_ref": [context_ref], "batch_size": sp.batch_size,
                                   "max_length": params.model.max_length, "mc_passes": sp.mc_dropout_passes},
            compute=ray.data.ActorPoolStrategy(size=actors),
            batch_size=1,
            batch_format="numpy",
            num_cpus=1 if use_gpu else sp.ray_cpus_per_actor,
            num_gpus=1 if use_gpu else 0,
        )
        scored, nodes = [], set()
        for row in done.iter_rows():
            scored.append(Shard(int(row["first"]), int(row["scored"])))
            nodes.add(row["node"])
        print(f"scored on Ray: {actors} actor(s); shards scored on {len(nodes)} node(s)", flush=True)
        return scored
    finally:
        ray.shutdown()
