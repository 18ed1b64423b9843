"""Issue 14: example papers from an uploaded reference library on the manage page
(BibTeX, Zotero RDF, CSL JSON), against the real app on loopback. The papers found
join the subscriber's examples as `digest set --like-file` adds them; a file too big
(announced or streamed), hostile or naming no known paper changes nothing and says
why on the page."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import httpx
import pytest
from web_served import csrf_token, served

from digest import store, subscriptions
from digest.bibliography import add_likes, import_likes
from digest.matching.interest import MAX_EXAMPLES
from digest.records import PaperRecord
from digest.tokens import make_token

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bibliography"
GO = "Mastering the game of Go with deep neural networks and tree search"
PAPERS = [
    PaperRecord(id="2305.18290", title="Direct Preference Optimization", source="t"),
    PaperRecord(id="1601.00001", title=GO, source="t"),
]


@pytest.fixture
def site(settings, engine):
    store.merge_papers(engine, PAPERS)
    ada = subscriptions.subscribe(
        engine, settings, "ada@example.org", "", interest="reward models", likes="2401.06102"
    )
    manage = "/manage/" + make_token(settings.secret_key, "manage", ["ada@example.org", ada.id])
    with served(settings, engine) as url:
        yield url, manage


def likes(engine) -> list[str]:
    return store.get_subscriber(engine, "ada@example.org").likes


def upload(client: httpx.Client, manage: str, name: str, data: bytes, **extra) -> httpx.Response:
    token = csrf_token(client, manage)
    return client.post(
        manage + "/examples",
        data={"csrf_token": token, **extra},
        files={"library": (name, data, "application/octet-stream")},
    )


def error_on_page(res: httpx.Response) -> str:
    found = re.search(r'<p class="error" id="library-error" role="alert">([^<]*)</p>', res.text)
    assert found, res.text[:500]
    return found.group(1)


@pytest.mark.parametrize("name", ["zotero.bib", "zotero.rdf", "zotero-csl.json"])
def test_an_upload_adds_the_papers_as_like_file_does(site, engine, name):
    url, manage = site
    data = (FIXTURES / name).read_bytes()
    with httpx.Client(base_url=url) as person:
        res = upload(person, manage, name, data)
    assert res.status_code == 200, res.text[:500]
    # the same papers, in the same order, as the CLI's import gives
    expected, _ = add_likes(["2401.06102"], import_likes(engine, data, name).paper_ids, 200)
    assert likes(engine) == expected
    assert likes(engine)[0] == "2401.06102" and "2305.18290" in likes(engine)
    assert "1601.00001" in likes(engine)  # the journal article, by its title
    notes = re.search(r'<ul class="notice" role="status" id="upload-notes">(.*?)</ul>', res.text)
    assert notes and f"Added {len(expected) - 1} example papers from {name}" in notes.group(1)
    assert "skipped" in notes.group(1)  # the untitled book
    assert 'value="' + ", ".join(expected) + '"' in res.text  # the form shows them

    # the same file again: nothing new, said so
    with httpx.Client(base_url=url) as person:
        again = upload(person, manage, name, data)
    assert "among your example papers already" in again.text
    assert likes(engine) == expected


def test_a_file_over_64_kib_is_refused_without_being_read(site, engine):
    url, manage = site
    big = (FIXTURES / "zotero.bib").read_bytes() * 40  # ~90 KiB
    with httpx.Client(base_url=url) as person:
        res = upload(person, manage, "big.bib", big)
        assert res.status_code == 413
        assert "The file is too big" in error_on_page(res) and "64 KiB" in res.text
        assert "Your subscription" in res.text  # the manage page, not a bare answer

        token = csrf_token(person, manage)
        cookie = person.cookies.get("digest_csrf")
    # Streamed with no length announced, and never finished: the answer comes once
    # 64 KiB have been read, while the client is still sending (enforced while read).
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
        f"{token}\r\n--{boundary}\r\nContent-Disposition: form-data; "
        'name="library"; filename="big.bib"\r\n\r\n'
    ).encode()
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            (
                f"POST {manage}/examples HTTP/1.1\r\nHost: {host}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                f"Cookie: digest_csrf={cookie}\r\nTransfer-Encoding: chunked\r\n\r\n"
            ).encode()
        )
        for part in (head, b"@misc{x, eprint={2401.00001}}\n" * 3000):  # ~90 KiB
            conn.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        answer = b""
        while b"</html>" not in answer:  # no final chunk was sent: the body is open
            got = conn.recv(65536)
            assert got, answer[:300]
            answer += got
    assert answer.startswith(b"HTTP/1.1 413") and b"The file is too big" in answer
    assert likes(engine) == ["2401.06102"]


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("laughs.rdf", (FIXTURES / "billion-laughs.rdf").read_bytes(), "DTD or entities"),
        ("xxe.rdf", (FIXTURES / "external-entity.rdf").read_bytes(), "DTD or entities"),
        ("cut.rdf", (FIXTURES / "malformed.rdf").read_bytes(), "not well-formed XML"),
        ("empty.rdf", (FIXTURES / "missing-fields.rdf").read_bytes(), "no paper found"),
        ("unknown.bib", b"@article{a, title={A title nobody stored}}", "no paper from"),
        ("binary.bib", b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8"),
        ("broken.json", b'[{"title": "x"', "not valid JSON"),
        ('"><script>alert(1)</script>.bib', b"@misc{x, title={", "no paper found"),
        ("crlf\r\nX-Evil: 1.bib", b"", "no paper found"),
    ],
)
def test_hostile_files_change_nothing_and_say_why(site, engine, name, data, says):
    url, manage = site
    with httpx.Client(base_url=url) as person:
        res = upload(person, manage, name, data)
    assert res.status_code == 400, res.text[:300]
    message = error_on_page(res)
    assert message.startswith("Nothing was changed:") and says in message
    assert "<script>" not in res.text and "root:" not in res.text
    assert likes(engine) == ["2401.06102"]


def test_no_file_no_csrf_or_a_bad_link_change_nothing(site, engine):
    url, manage = site
    with httpx.Client(base_url=url) as person:
        token = csrf_token(person, manage)
        res = person.post(manage + "/examples", data={"csrf_token": token})
        assert res.status_code == 400 and "Choose a file" in error_on_page(res)
        data = (FIXTURES / "zotero.bib").read_bytes()
        res = person.post(manage + "/examples", files={"library": ("a.bib", data)})
        assert res.status_code == 403
        forged = person.post(
            manage[:-3] + "xyz/examples",
            data={"csrf_token": token},
            files={"library": ("a.bib", data)},
        )
        assert forged.status_code == 400 and "not valid" in forged.text
    assert likes(engine) == ["2401.06102"]


def test_more_papers_than_fit_are_left_out_and_said(site, engine):
    url, manage = site
    store.merge_papers(
        engine, [PaperRecord(id=f"2402.{i:05d}", title=f"P {i}", source="t") for i in range(250)]
    )
    data = "".join(f"@misc{{k{i}, eprint={{2402.{i:05d}}}}}\n" for i in range(250)).encode()
    with httpx.Client(base_url=url) as person:
        res = upload(person, manage, "many.bib", data)
    assert res.status_code == 200
    assert len(likes(engine)) == MAX_EXAMPLES and likes(engine)[0] == "2401.06102"
    assert f"51 papers were left out: you can keep {MAX_EXAMPLES}" in res.text
