"""At 375 px (a phone) the live preview must be seen before the button that sends
the form, not below the whole form: real Chromium, bounding boxes."""

from __future__ import annotations

import threading

import pytest
import uvicorn
from conftest import free_port, settings_with, wait_for

from digest import pipeline
from digest.web import create_app

pytestmark = pytest.mark.chromium


@pytest.fixture
def site(settings, engine):
    pipeline.fetch_all(engine, settings)  # the sample papers, for the preview to show
    port = free_port()
    app = create_app(settings_with(settings, base_url=f"http://127.0.0.1:{port}"), engine)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=15)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(15)


@pytest.mark.parametrize("path", ["/"])
def test_the_preview_sits_above_the_button_on_a_phone(site, browser, path):
    page = browser.new_page(viewport={"width": 375, "height": 812})
    page.goto(site + path)
    page.fill("#keywords", "language model")
    button = page.locator("#profile-form button[type=submit]").first
    preview = page.locator(".preview")
    wait_for(lambda: page.locator("#preview-list li").count() > 0, timeout=20)
    box, button_box = preview.bounding_box(), button.bounding_box()
    assert box is not None and button_box is not None
    assert box["y"] + box["height"] <= button_box["y"], (box, button_box)
    assert box["width"] <= 375
    # Wide again: back in its own column beside the form.
    page.set_viewport_size({"width": 1280, "height": 900})
    wait_for(lambda: page.locator("aside .preview").count() == 1, timeout=5)
    page.close()
