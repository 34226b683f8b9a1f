"""What an annotator sees in a real browser: Label Studio's login form, then the model's predicted regions.

Debian's chromium and chromium-driver, driven by selenium (``scripts/test.sh`` installs them where it
can). The test skips, saying why, only where there is no browser to drive. The server and the
accounts are the fixtures of ``test_label_studio``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from nerloop.annotation.label_studio import LabelStudioBackend
from test_label_studio import Server, accounts, batch, ls_server, make_backend  # noqa: F401  (fixtures)

REGIONS = "span.htx-highlight"  # a highlighted region in the text of the labelling page


@pytest.mark.label_studio
def test_annotator_logs_in_through_the_form_and_sees_the_predicted_regions(
    browser, ls_server: Server, accounts: dict[str, str],  # noqa: F811
    make_backend: Callable[..., LabelStudioBackend], tmp_path: Path,  # noqa: F811
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    be = make_backend(annotators=["alice"])
    recs = batch(2)
    be.export(recs, 1)
    pid = be.annotator_projects()["alice"]
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
    shown = [e.text for e in browser.find_elements(By.CSS_SELECTOR, REGIONS) if e.text.strip()]
    first = recs[0]  # the stream opens the first task in nerloop's order: the least sure sentence first
    expected = [first.text[s:e] for s, e, _, _ in first.meta["pre_spans"]]
    page = browser.find_element(By.TAG_NAME, "body").text
    assert first.text in page and shown == expected, (shown, expected)
    assert all(f"{c:.2f}" in page for *_, c in first.meta["pre_spans"])  # each region's score, in the region list
    print(f"\nalice's labelling page shows {first.text!r} with the predicted regions {expected} "
          f"(screenshot {tmp_path})")
