"""A reader signs up, confirms, changes lists and leaves, in real Chromium (Selenium) against
the demo publication under waitress. No JavaScript on the pages; the test only reads them.

Screenshots of the subscribe, confirm and preferences pages at 375 px and 1280 px go to
``screenshots/web/`` in the repository (git-ignored) and to $PRESSROOM_ARTIFACTS when set.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pressroom import config
from pressroom.audience import subscribers
from pressroom.web.app import make_app
from tests.browser_helpers import chrome, chromium_or_skip, wait_for
from tests.conftest import REPO
from tests.web_helpers import link, mails, running

pytestmark = pytest.mark.browser

SECRET = b"browser-test-secret-0123456789abcdef"
SHOTS = REPO / "screenshots" / "web"

# WCAG contrast of an element's text against the nearest opaque background behind it
_CONTRAST_JS = """
function rgb(c) { const m = c.match(/[\\d.]+/g).map(Number); return m; }
function lum(c) {
  const [r, g, b] = rgb(c).slice(0, 3).map(v => v / 255).map(
    v => v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4));
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
function background(el) {
  for (; el; el = el.parentElement) {
    const c = getComputedStyle(el).backgroundColor;
    const v = rgb(c);
    if (v.length < 4 || v[3] > 0) return c;
  }
  return "rgb(255, 255, 255)";
}
const el = arguments[0];
const a = lum(getComputedStyle(el).color), b = lum(background(el));
return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
"""


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    chromium_or_skip()
    driver = chrome(tmp_path / "chromium-profile", width=1280, height=900)
    try:
        yield driver
    finally:
        driver.quit()


def shoot(driver: Any, name: str) -> None:
    """Screenshots of the current page at 375 px and at 1280 px wide."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.execute_script("document.activeElement && document.activeElement.blur()")
    for width in (375, 1280):
        driver.set_window_size(width, 900)
        layout = driver.execute_script(
            "return {sw: document.documentElement.scrollWidth,"
            " cw: document.documentElement.clientWidth, iw: window.innerWidth}"
        )
        assert layout["sw"] <= layout["cw"], f"{name} scrolls sideways at {width} px: {layout}"
        path = SHOTS / f"{name}-{width}.png"
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, max(600, min(height + 120, 2400)))
        driver.save_screenshot(str(path))
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 1000
        artifacts = os.environ.get("PRESSROOM_ARTIFACTS")
        if artifacts:
            Path(artifacts).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, Path(artifacts) / path.name)
    driver.set_window_size(1280, 900)


def check_accessible(driver: Any) -> None:
    """Every field has a label, text and buttons have WCAG AA contrast, no script runs."""
    from selenium.webdriver.common.by import By

    assert driver.find_elements(By.TAG_NAME, "script") == []
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    for field in driver.find_elements(By.CSS_SELECTOR, "input:not([type=hidden])"):
        if field.get_attribute("tabindex") == "-1":
            continue  # the honeypot: out of reach and hidden from screen readers
        assert field.accessible_name, f"field {field.get_attribute('name')} has no label"
    for el in driver.find_elements(By.CSS_SELECTOR, "h1, p, label, button, li"):
        if el.is_displayed() and el.text.strip():
            ratio = driver.execute_script(_CONTRAST_JS, el)
            assert ratio >= 4.5, f"contrast {ratio:.2f} < 4.5 for {el.text[:40]!r}"


def focus_order(driver: Any, steps: int) -> list[str]:
    """The names of the elements Tab reaches, in order, from the top of the page."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    driver.execute_script("document.activeElement && document.activeElement.blur()")
    order = []
    for _ in range(steps):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        el = driver.switch_to.active_element
        order.append(el.get_attribute("name") or el.get_attribute("id") or el.tag_name)
    return order


def _text(driver: Any, tag: str) -> str | None:
    """The text of the page's first ``tag``, or None while a navigation is under way.

    One script call, so the element cannot go stale between finding it and reading it; and
    any WebDriver error counts as "not loaded yet", since Chromium reports a page torn down
    mid-read in several ways (a stale element, "Node with given id does not belong to the
    document", "no such execution context") and ``wait_for`` asks again.
    """
    from selenium.common.exceptions import WebDriverException

    try:
        text = driver.execute_script(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;", tag
        )
    except WebDriverException:
        return None
    return None if text is None else str(text)


def heading(driver: Any, text: str) -> None:
    """Wait until the page's h1 reads ``text`` (a click starts a navigation, it does not wait)."""
    try:
        wait_for(lambda: _text(driver, "h1") == text, f"the page {text!r}")
    except AssertionError as timed_out:
        raise AssertionError(f"{timed_out} (now {_text(driver, 'h1')!r})") from None


def local(url: str, base: str) -> str:
    """A link made for the publication's site, pointed at the server under test."""
    return re.sub(r"^https://theduran\.example", base, url)


def test_a_reader_subscribes_confirms_changes_lists_and_leaves(browser: Any, demo: Path) -> None:
    from selenium.webdriver.common.by import By

    pub = config.load(demo / "config.yaml")
    before = (demo / "subscribers" / "subscribers.csv").read_text(encoding="utf-8")
    app = make_app(pub, secret=SECRET, clock=lambda: datetime.now(UTC))
    with running(app) as base:
        # 1. the form
        browser.get(f"{base}/subscribe")
        heading(browser, "Subscribe to The Duran")
        check_accessible(browser)
        # the masthead link, then the form top to bottom; the honeypot is never reached
        assert focus_order(browser, 7) == ["a", "email", "name", "list", "list", "button", "a"]
        shoot(browser, "subscribe")
        browser.find_element(By.ID, "email").send_keys("hedy@example.org")
        browser.find_element(By.ID, "name").send_keys("Hedy Lamarr")
        weekly, breaking = browser.find_elements(By.NAME, "list")
        assert weekly.is_selected() and not breaking.is_selected()
        browser.find_element(By.XPATH, "//label[starts-with(., 'Breaking news')]").click()
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        heading(browser, "Check your inbox")
        assert not any("hedy" in line for line in before.splitlines())
        assert subscribers.find(pub, "hedy@example.org") is None  # nothing before confirming

        # 2. the confirmation mail, its link, one button
        (mail,) = wait_for(lambda: mails(pub), "the confirmation mail")
        assert mail["To"] == "Hedy Lamarr <hedy@example.org>"
        browser.get(local(f"https://theduran.example/confirm?t={link(mail, 'confirm')}", base))
        heading(browser, "Confirm your subscription")
        assert subscribers.find(pub, "hedy@example.org") is None  # a GET changes nothing
        check_accessible(browser)
        shoot(browser, "confirm")
        browser.find_element(By.XPATH, "//button[.='Confirm']").click()
        heading(browser, "You are subscribed")
        row = _row(demo, "hedy@example.org")
        assert row["status"] == "active" and row["lists"] == "breaking;weekly"
        assert row["consent_source"] == "web-form" and row["consent_at"]

        # 3. preferences: from the welcome page's link, as from any issue's footer
        browser.find_element(By.LINK_TEXT, "manage your subscription").click()
        heading(browser, "Your subscription")
        check_accessible(browser)
        shoot(browser, "preferences")
        weekly, breaking = browser.find_elements(By.NAME, "list")
        assert weekly.is_selected() and breaking.is_selected()
        browser.find_element(By.XPATH, "//label[starts-with(., 'The Duran weekly')]").click()
        browser.find_element(By.XPATH, "//button[.='Save']").click()
        wait_for(lambda: "Saved." in (_text(browser, "main") or ""), "the Saved. note")
        assert _row(demo, "hedy@example.org")["lists"] == "breaking"

        # 4. unsubscribe from everything
        browser.find_element(By.XPATH, "//button[.='Unsubscribe from everything']").click()
        heading(browser, "You are unsubscribed")
        assert subscribers.is_suppressed(pub, "hedy@example.org")
    # every reader who was there before is still there, unchanged
    after = (demo / "subscribers" / "subscribers.csv").read_text(encoding="utf-8")
    assert _same_rows(before, after)


def _row(root: Path, email: str) -> dict[str, str]:
    with (root / "subscribers" / "subscribers.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["email"] == email:
                return row
    raise AssertionError(f"{email} is not in subscribers.csv")


def _same_rows(before: str, after: str) -> bool:
    """The old rows, compared on their original columns (the file gained consent columns)."""
    old = list(csv.DictReader(before.splitlines()))
    new = [r for r in csv.DictReader(after.splitlines()) if "hedy" not in r["email"]]
    return [{k: r[k] for k in old[0]} for r in new] == old
