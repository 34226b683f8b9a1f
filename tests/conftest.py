"""Shared fixtures: a throw-away nerloop project (git + DVC) with a tiny model and tiny data; a headless browser;
a real S3-compatible server (moto's ``moto_server`` on 127.0.0.1, credentials only from the environment)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from nerloop.data.files import write_conll, write_json
from nerloop.data.formats import read_conll
from nerloop.loop import inbox
from tiny_model import make_tiny_bert

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def project_env() -> dict[str, str]:
    """A user's environment: the venv's tools on PATH (as after `source .venv/bin/activate`), a git identity."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.org", DVC_NO_ANALYTICS="1")
    return env


def run_in(project: Path, *cmd: str) -> subprocess.CompletedProcess[str]:
    """Run a command in ``project`` with the venv's tools on PATH; fail the test with its output."""
    proc = subprocess.run(cmd, cwd=project, env=project_env(), text=True, capture_output=True)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def package_index_reachable(package: str) -> bool:
    """True when pip sees ``package`` on the configured index.

    A server install that fails while the index answers is a bug to report, not a machine without
    PyPI to skip on: the Doccano and Label Studio fixtures skip only when this is False.
    """
    try:
        proc = subprocess.run([sys.executable, "-m", "pip", "index", "versions", package], capture_output=True,
                              timeout=120)
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0


@pytest.fixture
def tiny_project(tmp_path: Path) -> Path:
    """A copy of the template with a few dozen demo sentences, a tiny BERT and fast params."""
    return make_tiny_project(tmp_path)


def write_tiny_data(raw: Path, model_dir: Path, pool_size: int, weights_seed: int | None = None) -> Path:
    """A few dozen demo sentences as ``raw``'s seed (24), gold (16), pool and its answers (``pool_size``), and a tiny
    BERT knowing their words at ``model_dir`` (its weights from ``weights_seed``, random without), which is
    returned."""
    raw.mkdir(parents=True)
    seed = read_conll(ROOT / "data/raw/seed.conll")[:24]
    gold = read_conll(ROOT / "data/raw/gold.conll")[:16]
    pool = read_conll(ROOT / "data/raw/pool_answers.conll")[:pool_size]
    write_conll(raw / "seed.conll", seed)
    write_conll(raw / "gold.conll", gold)
    write_conll(raw / "pool_answers.conll", pool)
    (raw / "pool.jsonl").write_text("".join(json.dumps({"tokens": r.tokens}) + "\n" for r in pool), encoding="utf-8")
    return make_tiny_bert(model_dir, {t for r in seed + gold + pool for t in r.tokens}, weights_seed)


def make_tiny_project(tmp_path: Path) -> Path:
    """``tmp_path/project`` (git + DVC, first commit made), its DVC remote ``tmp_path/remote`` and the tiny BERT."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (project / "scripts").mkdir()
    shutil.copy(ROOT / "scripts/stage.sh", project / "scripts/stage.sh")
    # the template's empty inbox, never the working tree's: after the demo (or a user's cycles) it holds answers
    write_json(project / "data/annotations/inbox.json", inbox.EMPTY)
    model_dir = write_tiny_data(project / "data" / "raw", tmp_path / "tiny-bert", pool_size=40)

    params = yaml.safe_load((project / "params.yaml").read_text())
    params["model"]["base"] = str(model_dir)
    params["train"].update(epochs=2, batch_size=8)
    params["select"].update(batch_size=6, k=3)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    run_in(project, "git", "init", "-q", "-b", "main")
    run_in(project, "dvc", "init", "-q")
    run_in(project, "dvc", "remote", "add", "-d", "local", str(tmp_path / "remote"))
    run_in(project, "git", "add", "-A")
    run_in(project, "git", "commit", "-q", "-m", "template")
    return project


@pytest.fixture
def browser(tmp_path: Path):  # selenium is optional: no return annotation that would import it
    """Headless Debian chromium through chromedriver, for the tests of what an annotator sees."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e .[dev])")
    from selenium.webdriver.chrome.service import Service

    driver_path = shutil.which("chromedriver")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not driver_path or not chromium:
        pytest.skip("no chromium / chromedriver: `apt-get install chromium chromium-driver` (scripts/test.sh does it "
                    "when run as root)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,900",
                f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


SECRET = "nerloop-test-secret-not-for-git"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto_server on 127.0.0.1:<free port>, test credentials in the environment; stopped by pid after."""
    pytest.importorskip("dvc_s3", reason="dvc-s3 is not installed (pip install -e '.[s3]')")
    server = Path(sys.executable).parent / "moto_server"
    if not server.exists():
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "nerloop-test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))  # nothing from ~/.aws
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = (tmp_path / "moto.log").open("w")
    proc = subprocess.Popen([str(server), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(endpoint, timeout=2).close()
                break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto_server did not start: {(tmp_path / 'moto.log').read_text()[-2000:]}")
                time.sleep(0.3)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    assert proc.returncode is not None
