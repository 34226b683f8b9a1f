"""The README's "Annotating in Doccano" walk-through, end to end, with a person in a real browser.

`nerloop doccano up` (on a free port: `--port`), `annotator add alice`, `annotation.backend: doccano` in
params.yaml, `nerloop cycle`; alice logs in through the page, opens a sentence the model pre-annotated,
relabels a span by clicking its label and picking another, and clicks the check mark; the next
`nerloop cycle` imports exactly her version and nothing else. Every command is a subprocess with no
NERLOOP_DOCCANO_* variable: what the README implies, nothing more. The server venv is the session's
(linked into the project's `.doccano/`, as in `test_documented_commands_from_a_project_root`).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nerloop.annotation.core.local_server import free_port
from nerloop.annotation.doccano import server as ds
from test_doccano import Annotator
from test_doccano_browser import DONE, NOT_DONE, SPAN_LABELS, _wait, log_in, span_labels, start_annotation
from test_label_studio_cycle import annotate_in, git, iob2, ledger_entries, nerloop, read_json

pytestmark = [pytest.mark.slow, pytest.mark.doccano]


def test_alice_corrects_a_sentence_in_the_page_and_the_next_cycle_imports_exactly_that(
    browser, tiny_project: Path, tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By

    project = tiny_project
    annotate_in(project, ds.SERVER, "doccano")

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    try:
        assert url in nerloop(project, "doccano", "up", "--port", str(port))
        password = re.search(r"password: (\S+)", nerloop(project, "doccano", "annotator", "add", "alice")).group(1)
        alice = Annotator(url, "alice", password)

        # 1. the first cycle trains on the seed, selects and sends alice the batch, pre-annotated
        assert "sent 6 sentences for cycle 1 to doccano" in nerloop(project, "cycle")
        pid = alice.project("nerloop-alice")
        examples = alice.examples(pid)  # in Doccano's order: page N of the annotation page is example N
        order = list(examples)
        spans = {sid: alice.spans(pid, eid) for sid, eid in examples.items()}
        sid = next((s for s in order if spans[s]), None)
        assert sid is not None, "the tiny model proposed no span at all: there is nothing to correct"
        labels = [lab for _, _, lab, _ in spans[sid]]
        entity_types = read_json(project / "data/prepared/labels.json")["entity_types"]
        new = next(t for t in entity_types if t != labels[0])

        # 2. alice, in the browser: log in, Start Annotation, go to that sentence, relabel its first span, check mark
        browser.set_window_size(1920, 1080)
        log_in(browser, url, "alice", password)
        start_annotation(browser, url, pid, "nerloop-alice", min_spans=0)
        browser.get(f"{url}/projects/{pid}/sequence-labeling?page={order.index(sid) + 1}")
        words = alice.c.find_example_by_id(pid, examples[sid]).text.split()
        try:  # that sentence (its id is in the metadata beside it), its spans and their confidences
            _wait(browser).until(lambda d: span_labels(d) == labels and sid in d.find_element(By.TAG_NAME, "body").text)
        finally:
            browser.save_screenshot(str(tmp_path / "alice-before.png"))
        page = browser.find_element(By.TAG_NAME, "body").text
        assert all(word in page for word in words) and "lowest first: " in page
        browser.find_elements(By.CSS_SELECTOR, SPAN_LABELS)[0].click()
        menu = _wait(browser).until(
            lambda d: [e for e in d.find_elements(By.CSS_SELECTOR, ".v-menu__content .v-list-item")
                       if e.is_displayed() and e.text.strip() == new])
        menu[0].click()
        _wait(browser).until(lambda d: span_labels(d) == [new, *labels[1:]])
        browser.find_element(By.XPATH, f"//button[.//*[local-name()='path' and @d='{NOT_DONE}']]").click()
        done = f"//button[.//*[local-name()='path' and @d='{DONE}']]"
        _wait(browser).until(lambda d: d.find_elements(By.XPATH, done))
        browser.save_screenshot(str(tmp_path / "alice-done.png"))
        assert [lab for _, _, lab, _ in alice.spans(pid, examples[sid])] == [new, *labels[1:]]

        # 3. the next cycle imports exactly that one sentence, as alice left it; the other five wait
        out = nerloop(project, "cycle")
        assert "fetched 1 new annotation (5 sentences still waiting)" in out, out
        (entry,) = ledger_entries(project)
        assert entry["id"] == sid and entry["annotator"] == "alice"
        tokens = entry["record"]["tokens"]
        relabelled = [(s, e, new if i == 0 else lab) for i, (s, e, lab, _) in enumerate(spans[sid])]
        made = iob2(" ".join(tokens), relabelled)
        assert entry["record"]["tags"] == made, (tokens, entry["record"]["tags"], made)
        assert git(project, "log", "-1", "--format=%s").startswith("nerloop cycle 1: 25 labelled sentences")
        print(f"\nalice relabelled {labels[0]} -> {new} on {sid} in the page and clicked the check mark; "
              f"`nerloop cycle` imported {entry['record']['tags']} (screenshots {tmp_path})")
    finally:
        nerloop(project, "doccano", "down")
