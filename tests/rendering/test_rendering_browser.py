"""The digest in a real headless Chromium (the Debian package, through Playwright) at
a phone's and a laptop's width: no horizontal scroll, and screenshots of both for a
human to look at (under the test's output folder)."""

from __future__ import annotations

import pytest
from conftest import REPO
from test_rendering import render_golden
from test_rendering_hostile import render_hostile

OUTPUT = REPO / "test-output" / "rendering"


def open_page(browser, html: str, width: int, color_scheme: str = "light"):
    page = browser.new_page(viewport={"width": width, "height": 800}, color_scheme=color_scheme)
    page.route("**/*", lambda route: route.abort())  # no network, not even by accident
    page.set_content(html, wait_until="load")
    return page


@pytest.mark.parametrize("width", [375, 1024])
@pytest.mark.parametrize("case", ["golden", "hostile"])
def test_no_horizontal_scroll_and_screenshots(browser, width: int, case: str) -> None:
    html = render_golden().html if case == "golden" else render_hostile()[0].html
    page = open_page(browser, html, width)
    try:
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        inner_width = page.evaluate("window.innerWidth")
        assert scroll_width <= inner_width, f"{case} at {width}px scrolls sideways"
        # the cards really are there and readable at this width
        cards = page.locator("table.card")
        assert cards.count() >= 3
        box = cards.first.bounding_box()
        assert box is not None and box["width"] <= width and box["width"] >= min(width, 600) * 0.8
        assert page.locator("mark").count() > 0
        assert page.evaluate("document.scripts.length") == 0  # no script from the input ran
        OUTPUT.mkdir(parents=True, exist_ok=True)
        shot = OUTPUT / f"digest-{case}-{width}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 5_000
    finally:
        page.close()


def test_dark_mode_changes_colours(browser) -> None:
    html = render_golden().html
    colours = {}
    for scheme in ("light", "dark"):
        page = open_page(browser, html, 375, scheme)
        try:
            colours[scheme] = page.evaluate(
                "getComputedStyle(document.querySelector('table.card')).backgroundColor"
            )
            if scheme == "dark":
                OUTPUT.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(OUTPUT / "digest-golden-375-dark.png"), full_page=True)
        finally:
            page.close()
    assert colours["light"] == "rgb(255, 255, 255)"
    assert colours["dark"] != colours["light"]
