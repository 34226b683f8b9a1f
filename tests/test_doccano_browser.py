"""What people see and do in a real browser: Doccano's login form, the model's spans with their
confidences, a correction made by clicking, the check mark, and the review page's two versions.

Debian's chromium and chromium-driver, driven by selenium (``scripts/test.sh`` installs them where
it can). The tests skip, saying why, only where there is no browser to drive. The server and the
accounts are the fixtures of ``test_doccano`` (a server of this module's own). Each test saves
screenshots of what the person saw into its pytest tmp dir.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from nerloop import paths
from nerloop.annotation.doccano import ENV_PASSWORD, ENV_URL, ENV_USERNAME, DoccanoBackend
from nerloop.data.files import write_json, write_records
from nerloop.data.ledger import Ledger
from nerloop.data.records import Record
from nerloop.loop import cycle
from nerloop.params import load_params
from nerloop.stages import import_annotations
from test_doccano import (  # noqa: F401  (fixtures)
    LABELS,
    PRE,
    REPO,
    Annotator,
    Server,
    accounts,
    batch,
    doccano_server,
    make_backend,
    make_record,
    people,
)

START = "//*[self::a or self::button][contains(., 'Start Annotation')]"
SPAN_LABELS = ".annotation-text svg g[style*='cursor'] text"  # the label under each highlighted span
META_ROWS = ".v-data-table tbody tr"  # the metadata table in the annotation page's sidebar
# the toolbar's first button shows mdiClose until the example is marked done, then mdiCheck
NOT_DONE = ("M19,6.41L17.59,5L12,10.59L6.41,5L5,6.41L10.59,12L5,17.59L6.41,19L12,13.41L17.59,19L19,17.59L13.41,12L19,"
            "6.41Z")
DONE = "M21,7L9,19L3.5,13.5L4.91,12.09L9,16.17L19.59,5.59L21,7Z"
WAIT_S = 90  # a loaded 2-core machine renders Doccano's pages slowly


def _wait(driver: Any, timeout: float = WAIT_S, poll: float = 0.5) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=poll)


def log_in(driver: Any, url: str, username: str, password: str) -> None:
    """Type the username and password into Doccano's login form and click Login."""
    from selenium.webdriver.common.by import By

    driver.get(f"{url}/auth")
    _wait(driver).until(lambda d: d.find_elements(By.NAME, "password"))
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(password)
    login = next(b for b in driver.find_elements(By.TAG_NAME, "button") if b.text.strip() == "Login")
    assert login.is_enabled()  # the form disables its button for passwords of 30 characters or more
    login.click()
    _wait(driver).until(lambda d: "/projects" in d.current_url)


def start_annotation(driver: Any, url: str, pid: int, name: str, min_spans: int) -> None:
    """Open project ``name`` and click "Start Annotation" as a person would, until ``min_spans`` spans show.

    Clicked before the project has loaded, the button leads to ``/projects/<id>/undefined`` (Doccano's
    404 page): so it is clicked only once the project's name shows, and the project is opened again
    from a wrong page.
    """
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

    project_page = f"{url}/projects/{pid}"

    def started(d: Any) -> bool:
        if "sequence-labeling" in d.current_url:
            return True
        if d.current_url.rstrip("/") != project_page:
            d.get(project_page)
        elif d.find_elements(By.XPATH, f"//*[contains(text(), '{name}')]"):
            for button in d.find_elements(By.XPATH, START):
                with contextlib.suppress(WebDriverException):
                    button.click()
        return False

    driver.get(project_page)
    _wait(driver, poll=1.0).until(started)
    _wait(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, SPAN_LABELS)) >= min_spans)


def span_labels(driver: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, SPAN_LABELS)]


def visible_meta_rows(driver: Any, n: int) -> list[str]:
    """The first ``n`` rows of the metadata table, each asserted shown and not cut off by the sidebar."""
    from selenium.webdriver.common.by import By

    _wait(driver).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, META_ROWS)) >= n)
    box = driver.find_element(By.CSS_SELECTOR, ".v-data-table__wrapper").rect
    rows = driver.find_elements(By.CSS_SELECTOR, META_ROWS)[:n]
    for row in rows:
        assert row.is_displayed(), row.text
        right = row.rect["x"] + row.rect["width"]
        assert right <= box["x"] + box["width"] + 1, f"row {row.text!r} is cut off at the sidebar's edge"
    return [" ".join(row.text.split()) for row in rows]


def wrong_record() -> Record:
    """A sentence the model got wrong: 'Acme Corp' proposed as PER, with a low confidence (0.41)."""
    rec = make_record(0)
    rec.meta["pre_spans"][2][2:] = ["PER", 0.41]
    rec.meta["pre_tags"] = [*PRE[:5], "B-PER", "I-PER", "O"]
    return rec


# ---------------------------------------------------------------- an annotator


@pytest.mark.doccano
def test_annotator_logs_in_through_the_form_and_sees_the_pre_annotations(
    browser, doccano_server: Server, accounts: dict[str, str],  # noqa: F811
    make_backend: Callable[..., DoccanoBackend], tmp_path: Path,  # noqa: F811
) -> None:
    be = make_backend(annotators=["alice"])
    recs = batch(2)
    be.export(recs, 1)
    log_in(browser, doccano_server.url, "alice", accounts["alice"])
    try:
        start_annotation(browser, doccano_server.url, be.annotator_projects()["alice"], be.project_name("alice"),
                         min_spans=3)
    finally:  # what a person would see, also when the spans do not show
        browser.save_screenshot(str(tmp_path / "alice-annotation-page.png"))
    first = recs[0] if recs[0].text in browser.page_source else recs[1]
    assert first.text in browser.page_source
    assert span_labels(browser) == [lab for _, _, lab, _ in first.meta["pre_spans"]]  # PER, LOC, ORG: the model's
    print(f"\nalice's annotation page shows {first.text!r} with spans {span_labels(browser)} (screenshot {tmp_path})")


@pytest.mark.doccano
def test_alice_corrects_a_span_by_clicking_and_the_next_cycle_imports_exactly_that(
    browser, doccano_server: Server, accounts: dict[str, str],  # noqa: F811
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
) -> None:
    """The model proposes 'Acme Corp' as PER (0.41). alice sees the confidences at the top of the
    sidebar, relabels the span ORG in the page, clicks the check mark; the fetch and import that
    ``nerloop cycle`` runs put exactly her version into the ledger."""
    from selenium.webdriver.common.by import By

    root = tmp_path / "project"  # a project root as `nerloop cycle` sees it
    root.mkdir()
    monkeypatch.chdir(root)
    for var, value in ((ENV_URL, doccano_server.url), (ENV_USERNAME, doccano_server.username),
                       (ENV_PASSWORD, doccano_server.password)):
        monkeypatch.setenv(var, value)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["annotation"]["backend"] = "doccano"
    params["annotation"]["doccano"].update(
        project="b" + str(abs(hash(request.node.name)) % 10**8), annotators=["alice"], qc_share=0.0)
    Path("params.yaml").write_text(yaml.safe_dump(params))
    write_json(paths.LABELS, {"entity_types": LABELS})
    rec = wrong_record()
    write_records(paths.OUTBOX, [rec])
    assert cycle.send(load_params()) == 1  # what `nerloop cycle` sends

    browser.set_window_size(1920, 1080)  # an annotator's screen
    log_in(browser, doccano_server.url, "alice", accounts["alice"])
    alice = Annotator(doccano_server.url, "alice", accounts["alice"])
    name = f"{params['annotation']['doccano']['project']}-alice"
    try:
        start_annotation(browser, doccano_server.url, alice.project(name), name, min_spans=3)
    finally:
        browser.save_screenshot(str(tmp_path / "alice-before.png"))
    (confidence,) = visible_meta_rows(browser, 1)
    assert confidence == ("Model confidence lowest first: 'Acme Corp' PER 0.41; 'Paris' LOC 0.80; "
                          "'Alice0 Smith' PER 0.90")
    assert span_labels(browser) == ["PER", "LOC", "PER"]

    browser.find_elements(By.CSS_SELECTOR, SPAN_LABELS)[2].click()  # the label under 'Acme Corp'
    menu = _wait(browser).until(lambda d: [e for e in d.find_elements(By.CSS_SELECTOR, ".v-menu__content .v-list-item")
                                           if e.is_displayed() and e.text.strip() in LABELS])
    next(e for e in menu if e.text.strip() == "ORG").click()
    _wait(browser).until(lambda d: span_labels(d) == ["PER", "LOC", "ORG"])
    browser.find_element(By.XPATH, f"//button[.//*[local-name()='path' and @d='{NOT_DONE}']]").click()
    _wait(browser).until(lambda d: d.find_elements(By.XPATH, f"//button[.//*[local-name()='path' and @d='{DONE}']]"))
    browser.save_screenshot(str(tmp_path / "alice-done.png"))

    assert cycle.fetch(load_params()) == 1  # the next `nerloop cycle`: fetch, then the import stage
    import_annotations.main()
    (entry,) = Ledger(paths.LEDGER).entries
    want = ["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG", "I-ORG", "O"]
    got = entry["record"]["tags"]
    assert entry["id"] == rec.id and entry["record"]["tokens"] == rec.tokens
    for token, tag, expected in zip(rec.tokens, got, want, strict=True):
        assert tag == expected, f"{token!r}: imported {tag}, alice made it {expected}"
    assert entry["record"]["meta"]["doccano"]["confirmed_by"] == "alice"
    print(f"\nalice relabelled 'Acme Corp' PER -> ORG in the page and marked it done; imported {got} "
          f"(screenshots {tmp_path})")


# ---------------------------------------------------------------- the lead


@pytest.mark.doccano
def test_the_lead_sees_both_versions_first_on_the_review_page(
    browser, doccano_server: Server, make_backend: Callable[..., DoccanoBackend],  # noqa: F811
    people: dict[str, Annotator], tmp_path: Path,  # noqa: F811
) -> None:
    be = make_backend(qc_share=1.0)
    rec = make_record(0)
    be.export([rec], 1)
    alice, bob = people["alice"], people["bob"]
    pa, pb = alice.project(be.project_name("alice")), bob.project(be.project_name("bob"))
    alice.confirm(pa, alice.examples(pa)[rec.id])  # alice keeps the model's spans
    per, loc, _ = (tuple(sp[:2]) for sp in rec.meta["pre_spans"])
    bob.annotate(pb, bob.examples(pb)[rec.id], [(*per, "ORG"), (*loc, "LOC")])  # bob: PER -> ORG, no ORG
    be.fetch(Ledger(tmp_path / "ledger.jsonl"))  # sends the disagreement to the review project
    review = people["lead"].project(be.project_name("review"))

    browser.set_window_size(1920, 1080)
    log_in(browser, doccano_server.url, doccano_server.username, doccano_server.password)
    try:
        start_annotation(browser, doccano_server.url, review, be.project_name("review"), min_spans=1)
        rows = visible_meta_rows(browser, 2)
    finally:
        browser.save_screenshot(str(tmp_path / "lead-review-page.png"))
    assert rows == ["Version alice [Alice0 Smith](PER) visited [Paris](LOC) with [Acme Corp](ORG) .",
                    "Version bob [Alice0 Smith](ORG) visited [Paris](LOC) with Acme Corp ."]
    assert span_labels(browser) == ["LOC"]  # the span both agree on
    print(f"\nthe review page shows first: {rows} (screenshot {tmp_path})")
