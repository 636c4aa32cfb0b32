"""The preview in a real browser: Debian's headless Chromium, driven by Selenium.

Skipped, with the reason shown, when /usr/bin/chromium or /usr/bin/chromedriver is missing
(`.ci/run` installs both). Screenshots go to tmp_path and, when PRESSROOM_ARTIFACTS is set,
to that folder as well.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pressroom import config
from pressroom.config import CtaConfig
from tests.browser_helpers import (
    chrome,
    chromium_or_skip,
    date_seed,
    image_host,
    local_images,
    serving,
    wait_for,
)

pytestmark = pytest.mark.browser

# what a page in a frame reports about itself: overflow, images, the support button
_LAYOUT_JS = """
const doc = document.documentElement;
return {
  scrollWidth: doc.scrollWidth,
  clientWidth: doc.clientWidth,
  innerWidth: window.innerWidth,
  images: Array.from(document.images).map(i => ({
    src: i.getAttribute("src"),
    alt: i.getAttribute("alt"),
    loaded: i.complete && i.naturalWidth > 0,
    right: i.getBoundingClientRect().right,
  })),
};
"""

_IN_VIEWPORT_JS = """
const r = arguments[0].getBoundingClientRect();
return {left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width,
        height: r.height, vw: window.innerWidth, vh: window.innerHeight};
"""


@pytest.fixture
def publication(demo: Path) -> Path:
    return date_seed(demo)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    chromium_or_skip()
    driver = chrome(tmp_path / "chromium-profile")
    try:
        yield driver
    finally:
        driver.quit()


def save_screenshot(driver: Any, element: Any | None, path: Path) -> Path:
    """Screenshot the page (or one element) to ``path`` and to $PRESSROOM_ARTIFACTS."""
    if element is None:
        driver.save_screenshot(str(path))
    else:
        element.screenshot(str(path))
    return save_artifact(path)


def save_artifact(path: Path) -> Path:
    """Check ``path`` is a real PNG and copy it to $PRESSROOM_ARTIFACTS when that is set."""
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 1000, f"{path} is not a real screenshot"
    artifacts = os.environ.get("PRESSROOM_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(artifacts) / path.name)
    return path


def luminance(css_colour: str) -> float:
    """Relative lightness 0..1 of a computed ``rgb(r, g, b)`` colour."""
    r, g, b = (int(v) for v in re.findall(r"\d+", css_colour)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def open_frame(driver: Any, frame_id: str) -> Any:
    """Switch into the index's frame ``frame_id`` once its document has loaded."""
    from selenium.webdriver.common.by import By

    driver.switch_to.default_content()
    frame = driver.find_element(By.ID, frame_id)
    driver.switch_to.frame(frame)
    wait_for(
        lambda: driver.execute_script("return document.readyState") == "complete",
        f"the {frame_id} frame to load",
    )
    return frame


def test_mobile_frame_fits_375px_shows_the_cta_and_alt_texts(
    browser: Any, publication: Path, tmp_path: Path
) -> None:
    with image_host(tmp_path / "images") as images:
        # real, wide images (served on 127.0.0.1) are what pushes a careless layout sideways
        assert local_images(publication.parent, images) > 0
        with serving(publication) as base:
            browser.get(base)
            open_frame(browser, "mobile")
            wait_for(
                lambda: all(i["loaded"] for i in browser.execute_script(_LAYOUT_JS)["images"]),
                "every image of the mobile frame to load",
            )
            _check_mobile_frame(browser, base, tmp_path, config.load(publication).cta[0])


def _check_mobile_frame(browser: Any, base: str, tmp_path: Path, cta: CtaConfig) -> None:
    """No sideways scroll, images inside and with alt, the CTA visible; then screenshots."""
    from selenium.webdriver.common.by import By

    layout = browser.execute_script(_LAYOUT_JS)
    assert layout["innerWidth"] == 375, layout
    assert layout["scrollWidth"] <= layout["clientWidth"], (
        f"the mobile view scrolls sideways at 375 px: content is {layout['scrollWidth']} px "
        f"wide in a {layout['clientWidth']} px viewport"
    )
    images = layout["images"]
    assert len(images) >= 2, "the demo issue shows the logo and at least one article image"
    assert all(i["right"] <= 375 for i in images), f"an image sticks out: {images}"
    no_alt = [i["src"] for i in images if not (i["alt"] or "").strip()]
    assert no_alt == [], f"images without alt text: {no_alt}"

    # the demo's support block (the seed site's "Help us grow … on Patreon!")
    button = browser.find_element(By.CSS_SELECTOR, f'[data-cta="{cta.name or cta.kind}"] a')
    assert button.get_attribute("href").startswith(cta.url)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    assert button.is_displayed()
    box = browser.execute_script(_IN_VIEWPORT_JS, button)
    assert box["width"] > 40 and box["height"] > 20, box  # a button, not a sliver
    assert box["left"] >= 0 and box["right"] <= box["vw"], f"CTA cut off sideways: {box}"
    assert box["top"] >= 0 and box["bottom"] <= box["vh"], f"CTA not in view: {box}"
    assert button.text.strip() in {cta.button, *(v.button for v in cta.variants if v.button)}

    browser.switch_to.default_content()
    browser.execute_script("window.scrollTo(0, 0)")
    save_screenshot(browser, None, tmp_path / "preview-index.png")

    # the same HTML on an emulated phone (375 px, mobile viewport rules), whole length
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 375, "height": 812, "deviceScaleFactor": 1, "mobile": True},
    )
    browser.get(base + "mobile")
    phone = browser.execute_script(_LAYOUT_JS)
    assert phone["scrollWidth"] <= phone["clientWidth"] == 375, phone
    shot = browser.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
    )
    path = tmp_path / "preview-mobile.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    save_artifact(path)


def test_desktop_frame_is_a_600px_column_without_sideways_scroll(
    browser: Any, publication: Path
) -> None:
    from selenium.webdriver.common.by import By

    with serving(publication) as base:
        browser.get(base)
        open_frame(browser, "desktop")
        layout = browser.execute_script(_LAYOUT_JS)
        assert layout["innerWidth"] == 700, layout
        assert layout["scrollWidth"] <= layout["clientWidth"], layout
        container = browser.find_element(By.CSS_SELECTOR, "table.container")
        assert container.size["width"] == 600


def test_dark_frame_applies_the_templates_dark_colours(
    browser: Any, publication: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    colour_js = "return getComputedStyle(arguments[0]).backgroundColor"
    with serving(publication) as base:
        browser.get(base)
        open_frame(browser, "desktop")
        light = browser.execute_script(colour_js, browser.find_element(By.TAG_NAME, "body"))
        frame = open_frame(browser, "dark")
        dark = browser.execute_script(colour_js, browser.find_element(By.TAG_NAME, "body"))
        scheme = browser.execute_script(
            "return getComputedStyle(document.documentElement).colorScheme"
        )
        assert luminance(light) > 0.7, light
        assert luminance(dark) < 0.2, f"the dark view's background is {dark}"
        assert scheme.strip() == "dark"
        browser.switch_to.default_content()
        save_screenshot(browser, frame, tmp_path / "preview-dark.png")


def test_index_reloads_itself_when_a_template_changes(browser: Any, publication: Path) -> None:
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

    footer = publication.parent / "templates" / "_footer.html.j2"
    with serving(publication) as base:
        browser.get(base)
        first = browser.find_element(By.TAG_NAME, "body").get_attribute("data-version")
        footer.write_text(
            footer.read_text(encoding="utf-8")
            + '<tr><td class="pad footer" id="marker">Printed on recycled electrons</td></tr>\n',
            encoding="utf-8",
        )

        def reloaded() -> bool:
            try:
                body = browser.find_element(By.TAG_NAME, "body")
                return body.get_attribute("data-version") not in (first, None)
            except WebDriverException:  # caught mid-reload
                return False

        wait_for(reloaded, "the index page to reload itself")
        open_frame(browser, "desktop")
        assert browser.find_element(By.ID, "marker").text == "Printed on recycled electrons"
