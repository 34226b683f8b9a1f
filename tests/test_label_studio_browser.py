"""What an annotator does in a real browser: Label Studio's login form, the model's predicted regions with
their scores, a correction made by clicking and typing, Submit; then what ``nerloop cycle`` imports.

Debian's chromium and chromium-driver, driven by selenium (``scripts/test.sh`` installs them where it
can). The test skips, saying why, only where there is no browser to drive. The server and the
accounts are the fixtures of ``test_label_studio``. The batch goes out and comes back through the
functions ``nerloop cycle`` runs (``cycle.send``, ``cycle.fetch``, then stage ``import``), in a project
directory of the test's own: a whole cycle would also train, which shows nothing more here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from nerloop import paths
from nerloop.annotation.label_studio import ENV_TOKEN, ENV_URL, LabelStudioBackend
from nerloop.data.files import write_json, write_records
from nerloop.data.ledger import Ledger
from nerloop.loop import cycle
from nerloop.params import load_params
from nerloop.stages import import_annotations
from test_label_studio import LABELS, PRE, REPO, Server, accounts, batch, ls_server, make_backend  # noqa: F401

REGIONS = "span.htx-highlight"  # a highlighted region in the text of the labelling page
SUBMIT = "button[aria-label='Submit current annotation']"


def project_dir(root: Path, be: LabelStudioBackend) -> None:
    """The files ``cycle.send`` / ``cycle.fetch`` / stage ``import`` read, in ``root`` (the working directory):
    params.yaml choosing Label Studio and the test's project prefix, the label set fixed by prepare."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["annotation"]["backend"] = "label_studio"
    params["annotation"]["label_studio"] = {"project": be.params.project, "annotators": ["alice"], "qc_share": 0.0}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    write_json(paths.LABELS, {"entity_types": LABELS})


@pytest.mark.label_studio
def test_alice_corrects_a_predicted_region_in_the_page_submits_and_the_cycle_imports_exactly_that(
    browser, ls_server: Server, accounts: dict[str, str],  # noqa: F811
    make_backend: Callable[..., LabelStudioBackend], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    be = make_backend(annotators=["alice"])
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.chdir(root)
    monkeypatch.setenv(ENV_URL, ls_server.url)
    monkeypatch.setenv(ENV_TOKEN, ls_server.token)
    project_dir(root, be)
    recs = batch(2)
    first = recs[0]  # the stream opens the first task in nerloop's order: the least sure sentence first
    first.meta["pre_spans"][1][2] = "PER"  # the model's mistake: "Paris" as a person
    first.meta["pre_tags"] = [*PRE[:3], "B-PER", *PRE[4:]]
    write_records(paths.OUTBOX, recs)
    params = load_params()
    assert cycle.send(params) == 2
    pid = be.annotator_projects()["alice"]
    task_id = int(json.loads(paths.EXPORT_MANIFEST.read_text())["examples"][first.id]["example"].split(":")[1])
    wait = WebDriverWait(browser, 60)

    browser.get(f"{ls_server.url}/user/login/")
    wait.until(ec.presence_of_element_located((By.NAME, "password")))
    browser.find_element(By.NAME, "email").send_keys("alice@nerloop.local")
    browser.find_element(By.NAME, "password").send_keys(accounts["alice"])
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda d: "/user/login" not in d.current_url)

    browser.get(f"{ls_server.url}/projects/{pid}/data?labeling=1")  # "Label All Tasks": the labelling stream
    try:
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, REGIONS)) >= 3)
    finally:  # what a person would see, also when the regions do not show
        browser.save_screenshot(str(tmp_path / "alice-labelling-page.png"))
    regions = {e.text: e for e in browser.find_elements(By.CSS_SELECTOR, REGIONS) if e.text.strip()}
    expected = [first.text[s:e] for s, e, _, _ in first.meta["pre_spans"]]
    page = browser.find_element(By.TAG_NAME, "body").text
    assert first.text in page and list(regions) == expected, (list(regions), expected)
    assert all(f"{c:.2f}" in page for *_, c in first.meta["pre_spans"])  # each region's score, in the region list
    assert "PER\nParis" in page  # the region list: label, then text

    regions["Paris"].click()  # select the wrong region, then the LOC label's hotkey
    ActionChains(browser).send_keys(str(LABELS.index("LOC") + 1)).perform()
    wait.until(lambda d: "LOC\nParis" in d.find_element(By.TAG_NAME, "body").text)
    browser.save_screenshot(str(tmp_path / "alice-corrected.png"))
    browser.find_element(By.CSS_SELECTOR, SUBMIT).click()
    wait.until(lambda d: be.conn.request("GET", f"tasks/{task_id}", "reading the task")["annotations"])
    print(f"\nalice's labelling page showed {first.text!r} with the predicted regions {expected} and their scores; "
          f"she relabelled 'Paris' PER -> LOC and pressed Submit (screenshots in {tmp_path})")

    assert cycle.fetch(params) == 1  # what `nerloop cycle` runs first, then stage import
    import_annotations.main()
    (entry,) = Ledger(paths.LEDGER).entries
    assert entry["id"] == first.id and entry["annotator"] == "alice"
    assert list(zip(first.tokens, entry["record"]["tags"], strict=True)) == list(zip(first.tokens, PRE, strict=True))
    assert entry["pre_tags"] == first.meta["pre_tags"]  # what the page showed, kept beside what she made of it
    assert json.loads(paths.PENDING.read_text())["waiting"] == {recs[1].id: 1}
