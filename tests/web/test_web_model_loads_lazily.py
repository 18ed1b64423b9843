"""The web app starts without loading the embedding model (about 1.4 s): sign-ups,
links and keyword previews never need it. The first preview that ranks an interest
loads it, outside that preview's time budget, and later ones reuse it."""

from __future__ import annotations

import httpx
from conftest import settings_with
from web_served import served

from digest import semantic
from digest.web import create_app


def test_the_model_loads_on_the_first_interest_preview(settings, engine):
    app = create_app(settings, engine)
    assert app.state.preview._model is None  # nothing started at creation

    with served(settings_with(settings, preview_timeout=1.0), engine) as url:
        keyword = httpx.post(f"{url}/api/preview", json={"keywords": "diffusion"})
        assert keyword.status_code == 200
        interest = httpx.post(
            f"{url}/api/preview", json={"interest": "reward models for aligning language models"}
        )
        # a 1 s budget: the preview still answers, the load happens before the budget
        assert interest.status_code == 200, interest.text
        assert interest.json()["ok"] is True
    # the status command still says which ranking runs (it loads the model itself)
    assert semantic.ranking_status(settings)["ranking"] in ("semantic", "lexical")
