"""What an annotator sees in a real browser: Doccano's login form, then the model's spans.

Debian's chromium and chromium-driver, driven by selenium (``scripts/test.sh`` installs them where
it can). The test skips, saying why, only where there is no browser to drive. The server and the
accounts are the fixtures of ``test_doccano`` (a server of this module's own).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest

from nerloop.annotation.doccano import DoccanoBackend
from test_doccano import Server, accounts, batch, doccano_server, make_backend  # noqa: F401  (fixtures)

START = "//*[self::a or self::button][contains(., 'Start Annotation')]"
SPAN_LABELS = ".annotation-text svg g[style*='cursor'] text"  # the label under each highlighted span


@pytest.mark.doccano
def test_annotator_logs_in_through_the_form_and_sees_the_pre_annotations(
    browser, doccano_server: Server, accounts: dict[str, str],  # noqa: F811
    make_backend: Callable[..., DoccanoBackend], tmp_path: Path,  # noqa: F811
) -> None:
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    be = make_backend(annotators=["alice"])
    recs = batch(2)
    be.export(recs, 1)
    pid = be.annotator_projects()["alice"]
    wait = WebDriverWait(browser, 30)

    browser.get(f"{doccano_server.url}/auth")
    wait.until(ec.presence_of_element_located((By.NAME, "password")))
    browser.find_element(By.NAME, "username").send_keys("alice")
    browser.find_element(By.NAME, "password").send_keys(accounts["alice"])
    login = next(b for b in browser.find_elements(By.TAG_NAME, "button") if b.text.strip() == "Login")
    assert login.is_enabled()  # the form disables its button for passwords of 30 characters or more
    login.click()
    wait.until(ec.url_contains("/projects"))

    def start_annotation(driver) -> bool:
        """Click "Start Annotation" as a person would. Clicked before the project has loaded, the
        button leads to ``/projects/<id>/undefined``: then go back and click again."""
        if "undefined" in driver.current_url:
            driver.get(project_page)
        if "sequence-labeling" not in driver.current_url:
            for button in driver.find_elements(By.XPATH, START):
                with contextlib.suppress(WebDriverException):
                    button.click()
        return "sequence-labeling" in driver.current_url

    project_page = f"{doccano_server.url}/projects/{pid}"
    browser.get(project_page)
    wait.until(ec.presence_of_element_located((By.XPATH, f"//*[contains(text(), '{be.project_name('alice')}')]")))
    WebDriverWait(browser, 30, poll_frequency=1.0).until(start_annotation)
    try:
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, SPAN_LABELS)) >= 3)
    finally:  # what a person would see, also when the spans do not show
        browser.save_screenshot(str(tmp_path / "alice-annotation-page.png"))
    shown = [e.text for e in browser.find_elements(By.CSS_SELECTOR, SPAN_LABELS)]
    first = recs[0] if recs[0].text in browser.page_source else recs[1]
    assert first.text in browser.page_source
    assert shown == [lab for _, _, lab, _ in first.meta["pre_spans"]]  # PER, LOC, ORG: the model's spans
    print(f"\nalice's annotation page shows {first.text!r} with spans {shown} (screenshot {tmp_path})")
