"""``score.engine: ray`` on a real two-node Ray cluster on 127.0.0.1 against the local engine.

The cluster is Ray's own multi-node test harness (``ray.cluster_utils.Cluster``): two real nodes
(raylet, object store, workers), one CPU each, so the two scoring actors land on different nodes.
The score stage runs as DVC runs it, with ``RAY_ADDRESS`` pointing at the cluster.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import SECRET, project_env, run_in
from nerloop.errors import NerloopError
from nerloop.selection.ray_scoring import NO_ADDRESS, actor_count, ray_address, rows_per_call

MEASURES = ["entropy_mean", "entropy_max", "least_confidence", "margin", "mnlp", "boundary"]


def test_actor_count_follows_the_cluster() -> None:
    assert actor_count({"CPU": 16.0, "GPU": 4.0}, 0, 2) == (4, True)  # one model copy per GPU
    assert actor_count({"CPU": 16.0}, 0, 2) == (8, False)  # no GPU: one per cpus_per_actor CPUs
    assert actor_count({"CPU": 1.0}, 0, 4) == (1, False)  # at least one
    assert actor_count({"CPU": 16.0, "GPU": 1.0}, 3, 1) == (3, True)  # asked for: taken as is


def test_rows_per_call_keeps_every_actor_busy() -> None:
    assert rows_per_call(40, 8, 2) == 20
    assert rows_per_call(1_000_000, 64, 8) == 64 * 16
    assert rows_per_call(3, 64, 8) == 1


def test_no_address_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(NerloopError, match="RAY_ADDRESS is not set"):
        ray_address()
    assert "ray start --head" in NO_ADDRESS and "score.engine: local" in NO_ADDRESS
    with socket.socket() as listening:  # something answers there: the address is taken as is
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        address = f"127.0.0.1:{listening.getsockname()[1]}"
        monkeypatch.setenv("RAY_ADDRESS", address)
        assert ray_address() == address
    monkeypatch.setenv("RAY_ADDRESS", address)  # closed now: a clear error instead of minutes of retries
    with pytest.raises(NerloopError, match="no Ray cluster answers there"):
        ray_address()
    monkeypatch.setenv("RAY_ADDRESS", "local")
    assert ray_address() == "local"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its parent) is dead for our purpose
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"))


def _pids_of_cluster(temp_dir: str) -> list[int]:
    """Pids of processes started for this cluster: nodes, workers, actors all inherit ``RAY_TMPDIR=temp_dir``."""
    marker = f"RAY_TMPDIR={temp_dir}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if marker in (proc / "environ").read_bytes().split(b"\0"):
                    found.append(int(proc.name))
            except OSError:
                pass
    return found


@pytest.fixture
def two_node_cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A head and a worker node on 127.0.0.1, one CPU each; yields the address for RAY_ADDRESS.

    Teardown: ``Cluster.shutdown()`` stops the node processes it started; the actors' workers exit when
    their node goes. Whatever of this cluster still runs after 20 s (found by pid: the node processes it
    started, and every process whose environment names this cluster's temp dir) is killed by pid, and
    the test fails if any outlives that.
    """
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[ray]'); Ray engine not tested")
    from ray.cluster_utils import Cluster

    temp_dir = tempfile.mkdtemp(prefix="nlray", dir="/tmp")  # short: Ray's unix sockets live under it
    monkeypatch.setenv("RAY_TMPDIR", temp_dir)  # sessions, sockets, logs, the address file: all in there
    # Keep every address on the loopback: on Linux, ray.init() rewrites 127.0.0.1 to the machine's outward IP
    # (services.resolve_ip_for_localhost), where nodes bound to 127.0.0.1 do not listen. This switch (named for
    # Windows and macOS) makes Ray's own node IP the loopback; it blocks only `ray start --address`, unused here.
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    node_args = {"num_cpus": 1, "object_store_memory": 100 * 1024**2, "node_ip_address": "127.0.0.1"}
    started: list[int] = []

    def ours() -> list[int]:
        return [p for p in {*started, *_pids_of_cluster(temp_dir)} if _alive(p)]

    cluster = None
    try:
        cluster = Cluster(initialize_head=True, head_node_args={**node_args, "include_dashboard": False})
        cluster.add_node(**node_args)
        cluster.wait_for_nodes()
        started = [info.process.pid for node in cluster.list_all_nodes()
                   for infos in node.all_processes.values() for info in infos]
        yield cluster.address
    finally:
        if cluster is not None:
            cluster.shutdown()
        if ray.is_initialized():
            ray.shutdown()
        deadline = time.monotonic() + 20
        while ours() and time.monotonic() < deadline:
            time.sleep(0.5)
        for pid in ours():
            os.kill(pid, signal.SIGKILL)
        time.sleep(1)
        left = ours()
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert started and not left, f"processes of the test cluster still running: {left}"


def _set_score_params(project: Path, **values: object) -> None:
    params_file = project / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params["score"].update(values)
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))


def _assert_scores_match(project: Path, local: pd.DataFrame, local_emb: np.ndarray) -> None:
    """The Ray engine's files in ``project`` hold what the local engine wrote: same sentences, order and tags."""
    remote = pd.read_parquet(project / "data/scores/scores.parquet")
    remote_emb = np.load(project / "data/scores/embeddings.npy")
    assert list(remote.columns) == list(local.columns)
    assert remote.dtypes.to_dict() == local.dtypes.to_dict()
    assert remote["id"].tolist() == local["id"].tolist()  # same sentences, same order
    for col in ("n_tokens", "pred_tags", "pred_types"):
        assert remote[col].tolist() == local[col].tolist(), col
    for a, b in zip(remote["pred_spans"], local["pred_spans"], strict=True):  # same spans; confidences to 1e-3
        sa, sb = json.loads(a), json.loads(b)
        assert [s[:3] for s in sa] == [s[:3] for s in sb]
        assert np.allclose([s[3] for s in sa], [s[3] for s in sb], atol=1e-3)
    measure_diff = float(np.abs(remote[MEASURES].to_numpy() - local[MEASURES].to_numpy()).max())
    emb_diff = float(np.abs(remote_emb.astype(np.float32) - local_emb.astype(np.float32)).max())
    print(f"ray vs local: max |measure diff| {measure_diff:.2e}, max |embedding diff| {emb_diff:.2e}")
    np.testing.assert_allclose(remote[MEASURES].to_numpy(), local[MEASURES].to_numpy(), rtol=1e-4, atol=1e-5)
    assert remote_emb.dtype == local_emb.dtype == np.float16 and remote_emb.shape == local_emb.shape
    np.testing.assert_allclose(remote_emb.astype(np.float32), local_emb.astype(np.float32), rtol=0, atol=2e-3)
    assert json.loads((project / "metrics/score.json").read_text())["scored_sentences"] == len(local)


def _repro_score(project: Path, address: str) -> str:
    """``dvc repro score`` as a user runs it with RAY_ADDRESS exported; its output."""
    env = dict(project_env(), RAY_ADDRESS=address)
    proc = subprocess.run([sys.executable, "-m", "dvc", "repro", "score"], cwd=project, env=env, text=True,
                          capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "Running stage 'score'" in out and "Running stage 'train'" not in out
    assert "2 actor(s), 1 CPU(s) each, 2 shard(s) of up to 20 sentences" in out
    assert "scored on Ray: 2 actor(s); shards scored on 2 node(s)" in out, out[-3000:]  # 1 CPU per node
    return out


@pytest.mark.slow
def test_ray_engine_scores_as_the_local_engine(tiny_project: Path, two_node_cluster: str, s3_endpoint: str) -> None:
    """Shards on the project's disk, then in an S3 bucket reached through the DVC remote's settings: both give
    the local engine's files. The cluster's nodes start before the test's AWS credentials are set, so their
    workers reach the bucket with what the driver hands them, as nodes without credentials of their own."""
    import boto3

    _set_score_params(tiny_project, batch_size=8)
    run_in(tiny_project, "dvc", "repro", "score")  # the local engine (default)
    local = pd.read_parquet(tiny_project / "data/scores/scores.parquet")
    local_emb = np.load(tiny_project / "data/scores/embeddings.npy")
    assert len(local) == 40

    _set_score_params(tiny_project, engine="ray")  # a params change: dvc repro runs score again, nothing else
    no_address = {k: v for k, v in project_env().items() if k != "RAY_ADDRESS"}
    proc = subprocess.run([sys.executable, "-m", "nerloop.stages", "score"], cwd=tiny_project, env=no_address,
                          text=True, capture_output=True, timeout=300)
    assert proc.returncode == 1 and "RAY_ADDRESS is not set" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in (tiny_project / "data/scores").iterdir()) == ["embeddings.npy", "scores.parquet",
                                                                               "settings.json"]

    out = _repro_score(tiny_project, two_node_cluster)
    assert str((tiny_project / ".nerloop/ray-shards").resolve()) in out
    _assert_scores_match(tiny_project, local, local_emb)
    assert not any((tiny_project / ".nerloop/ray-shards").iterdir())  # the run's shards are removed

    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket="nerloop-pool")
    run_in(tiny_project, "dvc", "remote", "add", "-d", "s3", "s3://nerloop-pool/dvc")
    run_in(tiny_project, "dvc", "remote", "modify", "s3", "endpointurl", s3_endpoint)
    _set_score_params(tiny_project, ray_shards="s3://nerloop-pool/shards")
    out = _repro_score(tiny_project, two_node_cluster)
    assert "in nerloop-pool/shards/" in out and SECRET not in out
    _assert_scores_match(tiny_project, local, local_emb)
    assert s3.list_objects_v2(Bucket="nerloop-pool", Prefix="shards/")["KeyCount"] == 0  # removed there too
