"""A DVC remote on S3: ``nerloop cycle`` pushes to it (``repo.push``), a fresh clone pulls the same bytes.

The S3 side is a real S3-compatible server, moto's standalone ``moto_server``, started by the test on
127.0.0.1 on a free port and stopped by its pid; DVC reaches it through ``dvc-s3`` with ``endpointurl``.
Credentials come only from the environment, as they would in production.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import SECRET, run_in

pytestmark = pytest.mark.slow

BUCKET = "nerloop-data"


def _hashes(project: Path, outs: list[str]) -> dict[str, str]:
    """md5 of every file under the DVC-cached outputs, by path relative to the project."""
    found = {}
    for out in outs:
        path = project / out
        for f in sorted([path] if path.is_file() else path.rglob("*")):
            if f.is_file():
                found[str(f.relative_to(project))] = hashlib.md5(f.read_bytes()).hexdigest()
    return found


def _cached_outs(project: Path) -> list[str]:
    """Outputs that DVC caches (and so pushes), from dvc.lock."""
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    dvc_yaml = yaml.safe_load((project / "dvc.yaml").read_text())
    uncached = {next(iter(o)) for stage in dvc_yaml["stages"].values() for o in stage.get("outs", [])
                if isinstance(o, dict) and not next(iter(o.values())).get("cache", True)}
    return sorted({o["path"] for stage in lock["stages"].values() for o in stage.get("outs", [])} - uncached)


def test_cycle_pushes_to_s3_and_a_fresh_clone_pulls_identical_data(tiny_project: Path, s3_endpoint: str,
                                                                   tmp_path: Path) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket=BUCKET)
    run_in(tiny_project, "dvc", "remote", "add", "-d", "s3", f"s3://{BUCKET}/nerloop")
    run_in(tiny_project, "dvc", "remote", "modify", "s3", "endpointurl", s3_endpoint)
    run_in(tiny_project, "git", "commit", "-qam", "DVC remote on S3")

    out = run_in(tiny_project, "nerloop", "cycle").stdout  # repro, commit, then dvc push to the default remote
    assert "dvc push" in out and "warning: dvc push failed" not in out
    outs = _cached_outs(tiny_project)
    assert "models/current" in outs and "data/scores" in outs
    before = _hashes(tiny_project, outs)
    assert len(before) > 10 and any(p.startswith("models/current/") for p in before)

    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            for o in page.get("Contents", [])]
    cache_files = [p for p in (tiny_project / ".dvc/cache").rglob("*") if p.is_file()]
    assert keys and all(k.startswith("nerloop/files/md5/") for k in keys) and len(keys) == len(cache_files)
    run_in(tiny_project, "git", "grep", "-q", "endpointurl")  # the endpoint is committed...
    secret_in_git = subprocess.run(["git", "grep", "-q", SECRET, "HEAD"], cwd=tiny_project).returncode == 0
    assert not secret_in_git  # ...the credentials are not

    clone = tmp_path / "clone"
    run_in(tmp_path, "git", "clone", "-q", str(tiny_project), str(clone))
    assert not (clone / "models/current").exists()
    run_in(clone, "dvc", "pull")
    assert _hashes(clone, outs) == before
    assert "up to date" in run_in(clone, "dvc", "status").stdout

    # and the other way round: a cache emptied on the first machine is refilled from the bucket
    shutil.rmtree(tiny_project / ".dvc/cache")
    shutil.rmtree(tiny_project / "models/current")
    run_in(tiny_project, "dvc", "pull")
    assert _hashes(tiny_project, outs) == before
