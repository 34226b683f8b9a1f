"""``score.engine: ray``: score the pool with an actor pool on a Ray cluster (Ray Data ``map_batches``).

Why Ray and how it is wired:

* Scoring is the step that outgrows one machine first: it is one forward pass per pool sentence,
  embarrassingly parallel, and a pool mined from a whole corpus has millions of sentences.
* The pool (what is left after exclusion and subsampling, decided on the driver exactly as the local
  engine decides it) goes to the cluster as record dicts in shards (``ray.data.from_items`` with one
  block per map batch), so worker nodes need no shared filesystem and no copy of the project.
* ``map_batches`` runs :class:`PoolScorer`, a callable class: each actor loads the model once, then
  scores batch after batch with :func:`nerloop.stages.score.score_records`, the local engine's own
  code. The model folder is shipped through the object store (``ray.put``) for the same reason.
* An actor takes one GPU when the cluster has GPUs (``num_gpus=1``; ``load_model`` then puts the
  model on it), else ``score.ray_cpus_per_actor`` CPUs (Ray sets the actor's torch threads to that).
* Every output row carries its index in the pool, so the driver writes ``scores.parquet`` and
  ``embeddings.npy`` in pool order whatever order the shards finish in, through the same writer as
  the local engine: same columns, same order, same files.

The cluster is the one named by ``RAY_ADDRESS`` (``ray start --head`` prints it). Without it the stage
stops and says what to do: quietly starting a one-machine Ray would only be a slower local engine.
``RAY_ADDRESS=local`` asks for exactly that throw-away local Ray, for trying the engine out. Every
node needs the same Python environment as the driver (``pip install "nerloop[ray]"``, same versions).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nerloop.data.records import Record
from nerloop.errors import NerloopError
from nerloop.params import Params

log = logging.getLogger(__name__)

NO_ADDRESS = (
    "score.engine is ray but RAY_ADDRESS is not set: start a cluster (`ray start --head` on one machine, "
    "`ray start --address=HEAD:6379` on the others) and export RAY_ADDRESS=HEAD:6379 before `dvc repro` or "
    "`nerloop cycle`; RAY_ADDRESS=local starts a throw-away Ray on this machine; or set score.engine: local"
)
CONNECT_TIMEOUT_S = 10.0
ACTORS_START_TIMEOUT_S = 600
MAX_ROWS_PER_CALL = 16  # x score.batch_size: rows per map_batches call, so length-sorting inside it pays off


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
    """Rows handed to an actor per call: up to ``MAX_ROWS_PER_CALL`` model batches, so sentences are
    length-sorted within a large group (little padding), but small enough that every actor gets work."""
    share = math.ceil(n / actors) if actors else n
    return max(1, min(batch_size * MAX_ROWS_PER_CALL, share))


def model_files(model_dir: Path) -> dict[str, bytes]:
    """Every file of a saved model folder, by relative path: shipped to actors through the object store."""
    return {str(p.relative_to(model_dir)): p.read_bytes() for p in sorted(model_dir.rglob("*")) if p.is_file()}


class PoolScorer:
    """A Ray Data actor: loads the model once, then scores one batch of pool records per call."""

    def __init__(self, model_ref: list[Any], batch_size: int, max_length: int, mc_passes: int) -> None:
        import ray

        from nerloop.model.inference import load_model

        files: dict[str, bytes] = ray.get(model_ref[0])  # wrapped in a list so Ray passes the ref, not the value
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

        records = [Record.from_dict(json.loads(r)) for r in batch["record"]]
        rows: list[dict[str, Any]] = [{} for _ in records]
        embeddings: list[np.ndarray] = [np.empty(0)] * len(records)
        for i, row, emb in score_records(self.model, self.tokenizer, self.labels, records,
                                         batch_size=self.batch_size, max_length=self.max_length,
                                         mc_passes=self.mc_passes, progress=False):
            rows[i], embeddings[i] = row, emb
        out: dict[str, np.ndarray] = {}
        for key in rows[0]:  # floats and ints as typed columns, strings (JSON) as Python objects
            values = [row[key] for row in rows]
            out[key] = np.array(values, dtype=object if isinstance(values[0], str) else None)
        out["index"] = np.asarray(batch["index"], dtype=np.int64)
        out["embedding"] = np.stack(embeddings).astype(np.float32)
        out["node"] = np.array([self.node] * len(records), dtype=object)
        return out


def _python(value: Any) -> Any:
    """A numpy scalar from a Ray batch back to the Python value the local engine puts in its rows."""
    return value.item() if isinstance(value, np.generic) else value


def score_on_ray(pool: Sequence[Record], model_dir: Path, params: Params) -> Iterator[tuple[int, dict, np.ndarray]]:
    """``(index into pool, row, embedding)`` scored on the Ray cluster, as ``score_local`` yields them.

    Checks up front (before any output is touched) that ray is installed and ``RAY_ADDRESS`` is set.
    """
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise NerloopError('score.engine is ray but ray is not installed: pip install -e ".[ray]"') from None
    return _stream(ray_address(), pool, model_dir, params)


def _stream(address: str, pool: Sequence[Record], model_dir: Path, params: Params) -> Iterator[tuple[int, dict,
                                                                                                      np.ndarray]]:
    """Connect to the cluster for the duration of the run, then disconnect (the cluster is not ours to stop)."""
    import ray
    import ray.data

    from nerloop.selection.scoring import row_columns

    sp = params.score
    ray.init(address=address, logging_level=logging.WARNING)
    try:
        actors, use_gpu = actor_count(ray.cluster_resources(), sp.ray_actors, sp.ray_cpus_per_actor)
        per_call = rows_per_call(len(pool), sp.batch_size, actors)
        print(f"scoring {len(pool)} sentences on Ray ({address}): {actors} actor(s), "
              f"{'1 GPU' if use_gpu else f'{sp.ray_cpus_per_actor} CPU(s)'} each, {per_call} sentences per call",
              flush=True)
        ctx = ray.data.DataContext.get_current()
        # Start every actor (model loaded) before the first batch: the shards then spread over the whole pool
        # instead of queueing on the first actor up, and a pool the cluster cannot hold fails with Ray's message
        # after ACTORS_START_TIMEOUT_S rather than waiting forever.
        ctx.wait_for_min_actors_s = ACTORS_START_TIMEOUT_S
        # Sentences are a few hundred bytes and scoring them costs milliseconds each: where an actor runs
        # matters more than where its shard lies, so shards go to any free actor, not the one nearest the data.
        ctx.execution_options.actor_locality_enabled = False
        items = [{"index": i, "record": json.dumps(r.to_dict(), ensure_ascii=False)} for i, r in enumerate(pool)]
        shards = ray.data.from_items(items, override_num_blocks=math.ceil(len(items) / per_call))
        del items
        model_ref = ray.put(model_files(Path(model_dir)))
        scored = shards.map_batches(
            PoolScorer,
            fn_constructor_kwargs={"model_ref": [model_ref], "batch_size": sp.batch_size,
                                   "max_length": params.model.max_length, "mc_passes": sp.mc_dropout_passes},
            compute=ray.data.ActorPoolStrategy(size=actors),
            batch_size=per_call,
            batch_format="numpy",
            num_cpus=1 if use_gpu else sp.ray_cpus_per_actor,
            num_gpus=1 if use_gpu else 0,
            udf_modifying_row_count=False,
        )
        columns = row_columns(sp.mc_dropout_passes > 0)
        nodes: set[str] = set()
        for batch in scored.iter_batches(batch_size=None, batch_format="numpy"):
            nodes.update(batch["node"].tolist())
            for k, index in enumerate(batch["index"]):
                yield int(index), {c: _python(batch[c][k]) for c in columns}, batch["embedding"][k]
        print(f"scored on Ray: {actors} actor(s); shards scored on {len(nodes)} node(s)", flush=True)
    finally:
        ray.shutdown()
