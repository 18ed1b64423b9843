"""Issue 14 leftovers: the library upload on the sign-up page (as on the manage page:
64 KiB, hostile files refused with a clear error, nothing stored then), and form
bodies that cannot be read answered for what they are (400 malformed, 413 too
large) instead of "this form was open for too long" (403)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from web_served import csrf_token, digest_web, served

from digest import store
from digest.bibliography import add_likes, import_likes
from digest.records import PaperRecord
from digest.tokens import make_token

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bibliography"
GO = "Mastering the game of Go with deep neural networks and tree search"
PAPERS = [
    PaperRecord(id="2305.18290", title="Direct Preference Optimization", source="t"),
    PaperRecord(id="1601.00001", title=GO, source="t"),
]
ADA = "ada@example.org"


@pytest.fixture
def site(settings, engine):
    store.merge_papers(engine, PAPERS)
    with served(settings, engine) as url:
        yield url


def fields(client: httpx.Client, **extra: str) -> dict[str, str]:
    return {
        "csrf_token": csrf_token(client),
        "email": ADA,
        "keywords": "",
        "interest": "reward models",
        "likes": "2401.06102",
        "timezone": "Europe/Berlin",
        "send_at": "07:30",
        "frequency": "daily",
        "max_papers": "10",
        **extra,
    }


def sign_up_with(client: httpx.Client, name: str, data: bytes, **extra: str) -> httpx.Response:
    return client.post(
        "/subscribe",
        data=fields(client, **extra),
        files={"library": (name, data, "application/octet-stream")},
    )


def error_on_page(res: httpx.Response) -> str:
    found = re.search(r'<p class="error" id="library-error" role="alert">([^<]*)</p>', res.text)
    assert found, res.text[:500]
    return found.group(1)


def test_the_signup_page_offers_the_upload(site):
    with httpx.Client(base_url=site) as person:
        page = person.get("/").text
    assert 'enctype="multipart/form-data"' in page
    assert 'name="library" type="file"' in page and "64 KiB" in page


def test_a_library_joins_the_example_papers_of_a_sign_up(site, engine):
    data = (FIXTURES / "zotero.bib").read_bytes()
    with httpx.Client(base_url=site) as person:
        res = sign_up_with(person, "zotero.bib", data)
    assert res.status_code == 200, res.text[:500]
    expected, _ = add_likes(["2401.06102"], import_likes(engine, data, "zotero.bib").paper_ids, 200)
    sub = store.get_subscriber(engine, ADA)
    assert sub is not None and sub.likes == expected and "1601.00001" in expected
    notes = re.search(r'<ul class="notice" role="status" id="upload-notes">(.*?)</ul>', res.text)
    assert notes and f"Added {len(expected) - 1} example papers from zotero.bib" in notes.group(1)
    assert "Check your inbox" in res.text


def test_no_file_chosen_is_a_plain_sign_up(site, engine):
    with httpx.Client(base_url=site) as person:
        res = sign_up_with(person, "", b"")  # a browser sends an empty part then
    assert res.status_code == 303
    assert store.get_subscriber(engine, ADA).likes == ["2401.06102"]


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("laughs.rdf", (FIXTURES / "billion-laughs.rdf").read_bytes(), "DTD or entities"),
        ("xxe.rdf", (FIXTURES / "external-entity.rdf").read_bytes(), "DTD or entities"),
        ("binary.bib", b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8"),
        ("unknown.bib", b"@article{a, title={A title nobody stored}}", "no paper from"),
        ('"><script>alert(1)</script>.bib', b"@misc{x, title={", "no paper found"),
    ],
)
def test_a_hostile_library_stores_nothing_and_says_why(site, engine, name, data, says):
    with httpx.Client(base_url=site) as person:
        res = sign_up_with(person, name, data)
    assert res.status_code == 400, res.text[:300]
    message = error_on_page(res)
    assert message.startswith("Nothing was stored:") and says in message
    assert "<script>" not in res.text
    assert 'value="ada@example.org"' in res.text  # the form comes back as typed
    assert store.get_subscriber(engine, ADA) is None


def test_a_library_over_64_kib_is_refused_on_the_signup_page(site, engine):
    big = (FIXTURES / "zotero.bib").read_bytes() * 40  # ~90 KiB
    with httpx.Client(base_url=site) as person:
        res = sign_up_with(person, "big.bib", big)
    assert res.status_code == 413
    assert "What was sent is too big" in error_on_page(res)
    assert "a library file included" in error_on_page(res)
    assert 'id="profile-form"' in res.text  # the sign-up page, not a bare answer
    assert store.get_subscriber(engine, ADA) is None


def test_unreadable_forms_are_400_and_too_many_parts_413(site, settings, engine):
    manage = "/manage/" + make_token(settings.secret_key, "manage", [ADA, 1])
    with httpx.Client(base_url=site) as person:
        token = csrf_token(person)
        for path in ("/subscribe", manage, manage + "/examples"):
            nameless = person.post(
                path,
                content=b"--xx\r\nContent-Disposition: form-data\r\n\r\n"
                + token.encode()
                + b"\r\n--xx--\r\n",  # a part without a name
                headers={"content-type": "multipart/form-data; boundary=xx"},
            )
            assert nameless.status_code == 400, (path, nameless.status_code, nameless.text[:200])
            assert "could not be read" in nameless.text
            assert "open for too long" not in nameless.text
            no_boundary = person.post(
                path, content=b"x", headers={"content-type": "multipart/form-data"}
            )
            assert no_boundary.status_code == 400, path
        # two files where the form has one (or none), and a field flood
        two = person.post(
            "/subscribe",
            data=fields(person),
            files=[("library", ("a.bib", b"x")), ("library", ("b.bib", b"y"))],
        )
        assert two.status_code == 413 and "more fields or files" in two.text
        flood = person.post(manage, data={f"f{i}": "x" for i in range(300)})
        assert flood.status_code == 413 and "Traceback" not in flood.text
    assert store.get_subscriber(engine, ADA) is None


def test_a_malformed_body_leaves_only_log_lines_in_the_log(env, tmp_path):
    """python-multipart's warning about a visitor's malformed body came out as a bare
    line on stderr, in the middle of DIGEST_LOG_FORMAT=json logs."""
    log = tmp_path / "web.log"
    with digest_web(env, tmp_path, log_to=log, DIGEST_LOG_FORMAT="json") as port:
        answer = httpx.post(
            f"http://127.0.0.1:{port}/subscribe",
            content=b"garbage",
            headers={"content-type": "multipart/form-data; boundary=zz"},
        )
        assert answer.status_code == 400
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines, "the server logged nothing at all"
    for line in lines:
        assert json.loads(line)["level"], line  # every line is a JSON log record
