"""The web app starts without loading the embedding model (about 1.4 s): sign-ups,
links and keyword previews never need it. The first preview that ranks an interest
loads it, outside that preview's time budget, and later ones reuse it."""

from __future__ import annotations

import time

import httpx
from conftest import settings_with
from web_served import served

from digest import semantic
from digest.matching import embedding
from digest.web import create_app


def load_seconds() -> float:
    """How long a fresh load of the model takes now, on this (possibly busy) machine."""
    started = time.perf_counter()
    embedding._load.__wrapped__(1)  # not the process's cached one
    return time.perf_counter() - started


def test_the_model_loads_on_the_first_interest_preview(settings, engine):
    app = create_app(settings, engine)
    assert app.state.preview._model is None  # nothing started at creation

    # The budget scales with a load measured now (0.2 s on a quiet machine, seconds on
    # a busy one), so the ranking fits in it however busy the machine is; a slow
    # first load (1.4 s cold) waits outside it.
    budget = max(1.0, load_seconds())
    with served(settings_with(settings, preview_timeout=budget), engine) as url:
        keyword = httpx.post(f"{url}/api/preview", json={"keywords": "diffusion"})
        assert keyword.status_code == 200
        interest = httpx.post(
            f"{url}/api/preview", json={"interest": "reward models for aligning language models"}
        )
        # the preview answers within its budget: the load happened before it
        assert interest.status_code == 200, interest.text
        assert interest.json()["ok"] is True
    # the status command still says which ranking runs (it loads the model itself)
    assert semantic.ranking_status(settings)["ranking"] in ("semantic", "lexical")
