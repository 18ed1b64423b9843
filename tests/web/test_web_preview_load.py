"""Issue 16, item 1: the live preview must not stall the app. A flood of previews from
one address is refused (429 / 503 with Retry-After) while /healthz keeps answering,
and the preview's index is built once per paper set, not once per request."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from conftest import wait_for
from starlette.testclient import TestClient
from web_served import digest_web

from digest.web.app import create_app

FLOOD_CONNECTIONS = 32
FLOOD_CAP = 5000  # requests; the flood stops earlier, once /healthz has answered


@pytest.fixture
def web_server(env, tmp_path) -> Iterator[str]:
    """The real `digest web` in a subprocess, with a small preview limit and queue."""
    with digest_web(
        env, tmp_path, DIGEST_PREVIEW_LIMIT_PER_IP="10", DIGEST_PREVIEW_QUEUE="2"
    ) as port:
        yield f"http://127.0.0.1:{port}"


async def flood(base: str, stop: threading.Event, answers: list[httpx.Response]) -> None:
    """Previews from one client over many connections until `stop` (or the cap)."""
    limits = httpx.Limits(max_connections=FLOOD_CONNECTIONS)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

        async def worker() -> None:
            while not stop.is_set() and len(answers) < FLOOD_CAP:
                body = {"keywords": "diffusion, robot*", "max_papers": 5}
                answers.append(await client.post("/api/preview", json=body))

        await asyncio.gather(*(worker() for _ in range(FLOOD_CONNECTIONS)))


def test_a_flood_of_previews_is_refused_while_healthz_answers(web_server):
    stop = threading.Event()
    answers: list[httpx.Response] = []
    attacker = threading.Thread(target=lambda: asyncio.run(flood(web_server, stop, answers)))
    attacker.start()
    try:
        wait_for(lambda: len(answers) >= 50, timeout=60)  # the flood is under way
        health = httpx.get(web_server + "/healthz", timeout=30)
        flooding = attacker.is_alive()
    finally:
        stop.set()
        attacker.join(120)
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert flooding, "the flood ended before /healthz was asked"
    statuses = Counter(a.status_code for a in answers)
    assert set(statuses) <= {200, 429, 503}, statuses
    assert statuses[200] >= 1
    assert statuses[200] <= 10  # DIGEST_PREVIEW_LIMIT_PER_IP a minute
    assert statuses[429] >= len(answers) - 10 - statuses[503] > 0
    for answer in answers:
        if answer.status_code in (429, 503):
            assert int(answer.headers["retry-after"]) >= 1
            assert answer.json()["error"]
        else:
            assert answer.json()["ok"] is True


def fetch(cli, tmp_path, papers: list[dict[str, str]]) -> None:
    source = tmp_path / "more.jsonl"
    source.write_text("".join(json.dumps(p) + "\n" for p in papers))
    result = cli("fetch", extra_env={"DIGEST_SOURCES": f"file:{source}"})
    assert result.code == 0, result.stderr


def test_the_preview_index_is_built_once_per_paper_set(cli, settings, engine, tmp_path):
    assert cli("fetch").code == 0  # the 50 sample papers, stored
    app = create_app(settings, engine)
    with TestClient(app, base_url=settings.base_url) as client:
        recent = app.state.preview.papers

        def considered(keywords: str) -> int:
            answer = client.post("/api/preview", json={"keywords": keywords})
            assert answer.status_code == 200, answer.text
            return int(answer.json()["considered"])

        assert considered("diffusion") == 50
        assert considered("robot*, language model") == 50
        assert considered('"reinforcement learning"') == 50
        assert recent.builds == 1  # one paper set loaded
        assert recent.current().builds == 1  # and one index built over it
        fetch(cli, tmp_path, [{"id": "new:1", "title": "Diffusion for robots", "abstract": "x"}])
        assert considered("diffusion") == 51  # a new paper: a new set, a new index
        assert considered("robot*") == 51
        assert recent.builds == 2
        assert recent.current().builds == 1
