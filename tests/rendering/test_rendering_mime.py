"""The MIME bytes we build by hand parse back with Python's `email` package: both
parts, the bulk-mail headers, bodies equal to what was rendered, and lines within
the limits of RFC 5322 / 2045. And long digests stay under the size Gmail clips."""

from __future__ import annotations

import email
import email.policy
import email.utils
import re
import time
from datetime import date
from xml.etree import ElementTree

import html5lib
import pytest
from conftest import REPO
from test_rendering import make_settings, render_golden

from digest.errors import DigestError
from digest.matching import Hit, Match
from digest.models import Paper
from digest.rendering import (
    MESSAGE_LIMIT,
    Item,
    build_message,
    items_from_outbox,
    make_environment,
    render_digest,
)
from digest.tokens import find_mail_token, make_mail_token, read_token

EXPECTED_HEADERS = {
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
}


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def document(html: str) -> bytes:
    """The tree an HTML5 parser (as a mail client's) builds from `html`: character
    references decoded, in text and attribute values alike."""
    return ElementTree.tostring(html5lib.parse(html, namespaceHTMLElements=False))


def test_message_parses_back_with_both_parts_and_headers() -> None:
    settings = make_settings()
    rendered = render_golden(settings)
    data = build_message(settings, "reader@example.org", rendered).as_bytes()
    msg = parse(data)
    assert set(msg.keys()) == EXPECTED_HEADERS
    assert msg.defects == []
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.defects == [] for p in parts)
    # the parser keeps the wire's CRLF line ends; the text is otherwise unchanged
    assert parts[0].get_content().replace("\r\n", "\n") == rendered.text
    # the HTML travels 7bit: ASCII, non-ASCII as character references, which give
    # the document that was rendered
    assert parts[1]["Content-Transfer-Encoding"] == "7bit"
    html = parts[1].get_content()
    assert html.isascii() and not rendered.html.isascii()
    assert "T&#220;LU" in html and "TÜLU" in rendered.html
    assert html.replace("\r\n", "\n").rstrip("\n") != rendered.html.rstrip()
    assert document(html.replace("\r\n", "\n").rstrip()) == document(rendered.html.rstrip())
    assert str(msg["From"]) == "Paper Digest <digest@example.org>"
    assert str(msg["To"]) == "reader@example.org"
    assert str(msg["Subject"]) == rendered.subject
    assert email.utils.parsedate_to_datetime(str(msg["Date"])).tzinfo is not None
    assert str(msg["Message-ID"]).endswith("@example.org>")
    assert str(msg["List-Id"]) == "Paper digest <digest.example.org>"
    assert str(msg["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    https, mailto = (u.strip().strip("<>") for u in str(msg["List-Unsubscribe"]).split(","))
    assert https.startswith("https://digest.example.org/unsubscribe/")
    token = https.rsplit("/", 1)[1]
    assert read_token("test-secret", "unsubscribe", token) == ["reader@example.org", 7]
    token = make_mail_token("test-secret", "unsubscribe-mail", 7)
    assert mailto == f"mailto:digest+unsubscribe-{token}@example.org?subject=unsubscribe%20{token}"
    assert find_mail_token("test-secret", "unsubscribe-mail", mailto) == 7
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF everywhere, no bare LF
    # the text travels 8bit: its UTF-8 as it is, CRLF line ends, lines within 998
    # octets (checked above; RFC 5322 2.1.1), for a transport that takes 8BITMIME
    assert parts[0]["Content-Transfer-Encoding"] == "8bit" and not rendered.text.isascii()
    text_body = data.split(b"\r\n\r\n", 2)[2].split(b"\r\n--=_digest_")[0]
    assert text_body == rendered.text.replace("\n", "\r\n").encode()


def test_bytes_match_what_the_email_package_would_say() -> None:
    """Re-serialising through `email` keeps the same headers and part contents."""
    settings = make_settings()
    rendered = render_golden(settings)
    msg = parse(build_message(settings, "reader@example.org", rendered).as_bytes())
    again = parse(msg.as_bytes(policy=email.policy.SMTP))
    assert [str(v) for v in again.values()] == [str(v) for v in msg.values()]
    assert [p.get_content() for p in again.iter_parts()] == [
        p.get_content() for p in msg.iter_parts()
    ]


def test_non_ascii_subject_and_bodies_round_trip() -> None:
    settings = make_settings(subject_template="{count} نشر جديد 📚: {topics} - {date}")
    paper = Paper(
        seq=1,
        id="x1",
        title="Ορθογραφία and مرحبا بالعالم in 📚 diffusion " * 3,
        abstract="نص عربي طويل " * 200,
    )
    items = [Item(paper, Match("x1", 1.0, [Hit("diffusion", "title")]))]
    rendered = render_digest(
        make_environment(settings), settings, "r@example.org", items, date(2026, 11, 24), "k"
    )
    data = build_message(settings, "r@example.org", rendered).as_bytes()
    msg = parse(data)
    assert str(msg["Subject"]) == rendered.subject and "📚" in rendered.subject
    text, html = (p.get_content() for p in msg.iter_parts())
    assert "مرحبا بالعالم" in text and "مرحبا بالعالم" in html
    # the text travels 8bit (its UTF-8, shorter than any encoding); the mostly
    # non-Latin HTML as base64, shorter here than character references
    assert [p["Content-Transfer-Encoding"] for p in msg.iter_parts()] == ["8bit", "base64"]
    assert len(data) <= MESSAGE_LIMIT


def many_papers(n: int) -> list[Item]:
    items = []
    for i in range(n):
        paper = Paper(
            seq=i,
            id=f"2411.{i:05d}",
            title=f"Paper {i} on diffusion models for robot learning at scale, part {i}",
            abstract="A sentence about diffusion that goes on for a while. " * 20,
            authors=[f"Author {j}" for j in range(8)],
            categories=["cs.LG", "cs.RO", "cs.CV"],
            url=f"https://arxiv.org/abs/2411.{i:05d}?" + "x" * 300,
            pdf_url=f"https://arxiv.org/pdf/2411.{i:05d}?" + "y" * 300,
            code_url=f"https://github.com/example/{i}?" + "z" * 300,
            hf_url=f"https://huggingface.co/papers/2411.{i:05d}?" + "w" * 300,
            published=date(2026, 11, 23),
            upvotes=i,
        )
        items.append(Item(paper, Match(paper.id, 1.0, [Hit("diffusion", "title")])))
    return items


def test_long_digest_is_cut_with_a_link_to_the_rest() -> None:
    settings = make_settings()
    items = many_papers(200)
    rendered = render_digest(
        make_environment(settings), settings, "r@example.org", items, date(2026, 11, 24), "k"
    )
    data = build_message(settings, "r@example.org", rendered).as_bytes()
    assert len(data) <= MESSAGE_LIMIT
    assert 0 < rendered.shown < 200 and rendered.total == 200
    more = 200 - rendered.shown
    view = rendered.links["view"]
    assert f"{more} more papers in your full digest" in rendered.html
    assert f'href="{view}"' in rendered.html.split("more papers in your full digest")[0][-400:]
    assert f"...and {more} more papers in your full digest: {view}" in rendered.text
    msg = parse(data)
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


@pytest.mark.parametrize(
    "bad", ["evil@example.org\r\nBcc: victim@example.org", "a@b.org, c@d.org", "<a@b.org>", ""]
)
def test_recipient_that_is_not_one_plain_address_is_refused(bad: str) -> None:
    settings = make_settings()
    with pytest.raises(DigestError):
        build_message(settings, bad, render_golden(settings))


def test_no_input_injects_a_header() -> None:
    settings = make_settings(subject_template="{count} new\r\nBcc: victim@example.org {topics}")
    paper = Paper(seq=1, id="p1", title="Title\r\nX-Evil: 1")
    hits = [Hit("term\r\nX-Injected: yes", "title")]
    items = [Item(paper, Match("p1", 1.0, hits))]
    rendered = render_digest(
        make_environment(settings), settings, "r@example.org", items, date(2026, 11, 24), "k"
    )
    data = build_message(settings, "r@example.org", rendered).as_bytes()
    msg = parse(data)
    assert set(msg.keys()) == EXPECTED_HEADERS
    assert "\n" not in str(msg["Subject"]) and "Bcc" in str(msg["Subject"])
    assert msg["Bcc"] is None and msg["X-Injected"] is None and msg["X-Evil"] is None


def test_view_in_browser_renders_the_whole_digest_from_the_outbox_row() -> None:
    settings = make_settings()
    items = many_papers(60)
    papers = {i.paper.id: i.paper for i in items}
    explanations = {i.paper.id: i.match.to_json() for i in items}
    again = items_from_outbox(papers, [i.paper.id for i in items], explanations)
    assert [i.match.why() for i in again] == [i.match.why() for i in items]
    full = render_digest(
        make_environment(settings),
        settings,
        "r@example.org",
        again,
        date(2026, 11, 24),
        "k",
        size_limit=None,
    )
    assert full.shown == 60 and "more papers in your full digest" not in full.html
    assert full.html.count('class="card"') == 60


@pytest.mark.parametrize(
    ("from_address", "name"),
    [
        ('Dr. "Digest", Lab <digest@example.org>', 'Dr. "Digest", Lab'),
        ("Ünïcode Digest <digest@example.org>", "Ünïcode Digest"),
        ("digest@example.org", ""),
    ],
)
def test_sender_names_are_quoted_or_encoded(from_address: str, name: str) -> None:
    settings = make_settings(from_address=from_address)
    data = build_message(settings, "r@example.org", render_golden(settings)).as_bytes()
    msg = parse(data)
    assert msg["From"].addresses[0].addr_spec == "digest@example.org"
    assert msg["From"].addresses[0].display_name == name
    assert set(msg.keys()) == EXPECTED_HEADERS


def test_one_click_header_only_for_https_unsubscribe_links(settings) -> None:
    """RFC 8058: List-Unsubscribe-Post promises one-click over HTTPS only."""
    import email
    import email.policy
    from dataclasses import replace as dc_replace
    from datetime import date as d

    from digest.rendering import build_message, make_environment, render_digest

    for base, expected in (("https://digest.example.org", True), ("http://127.0.0.1:8000", False)):
        s = dc_replace(settings, base_url=base)
        rendered = render_digest(
            make_environment(s), s, "ada@example.org", [], d(2026, 3, 2), "1:x"
        )
        raw = build_message(s, "ada@example.org", rendered)
        data = raw if isinstance(raw, bytes) else raw.as_bytes()
        msg = email.message_from_bytes(data, policy=email.policy.default)
        assert base in str(msg["List-Unsubscribe"])
        assert (msg["List-Unsubscribe-Post"] is not None) is expected


def _part(settings, items: list[Item], subtype: str) -> tuple[str, email.message.EmailMessage]:
    """The digest's rendered `subtype` ("html" or "plain") and that part as sent,
    after checking every line of the message is within 998 octets."""
    rendered = render_digest(
        make_environment(settings), settings, "r@example.org", items, date(2026, 11, 24), "k"
    )
    data = build_message(settings, "r@example.org", rendered).as_bytes()
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    direct = rendered.html if subtype == "html" else rendered.text
    return direct, parse(data).get_body(preferencelist=(subtype,))


def html_part(settings, items: list[Item]) -> tuple[str, email.message.EmailMessage]:
    return _part(settings, items, "html")


def test_a_line_past_998_octets_is_broken_between_attributes_in_7bit() -> None:
    """A summary with many marked words, each with its inline style, is one line of
    over 998 octets: the 7bit part breaks it inside tags, where a line break is the
    space it replaces, so the document stays the same."""
    paper = Paper(seq=1, id="m1", title="Diffusion", abstract="Diffusion and diffusion. " * 16)
    items = [Item(paper, Match("m1", 1.0, [Hit("diffusion", "abstract")]))]
    html, part = html_part(make_settings(), items)
    assert max(len(line) for line in html.split("\n")) > 998
    assert part["Content-Transfer-Encoding"] == "7bit"
    sent = part.get_content().replace("\r\n", "\n")
    assert '<mark\nclass="hl"\nstyle="' in sent
    assert document(sent.rstrip()) == document(html.rstrip())


def test_html_that_7bit_cannot_carry_goes_quoted_printable(tmp_path) -> None:
    """Non-ASCII inside a comment or <script> (where `&#...;` is not decoded), a line
    of text over 998 octets with no tag to break it in, or one in a script (breaking
    it between attributes would change a string): the part is quoted-printable, exact."""
    items = [Item(Paper(seq=1, id="s1", title="Ünïcode title"), None)]
    layout = (REPO / "templates" / "layout.html").read_text()
    for name, source in [
        ("comment", layout.replace("</body>", "<!-- Ü --></body>")),
        ("script", layout.replace("</body>", '<script>var a = "Ü";</script></body>')),
        ("long", layout.replace("</body>", "<p>" + "word " * 300 + "</p></body>")),
        # a tag in a script's string: breaking the line there would change the script
        (
            "script-long",
            layout.replace(
                "</body>",
                f'<script>f(\'<a href="x" title="{"y" * 600}" id="{"z" * 600}">\');</script>'
                "</body>",
            ),
        ),
    ]:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "layout.html").write_text(source)
        html, part = html_part(make_settings(templates_dir=folder), items)
        assert part["Content-Transfer-Encoding"] == "quoted-printable", name
        assert part.get_content().replace("\r\n", "\n").rstrip() == html.rstrip()
    html, part = html_part(make_settings(), items)
    assert part["Content-Transfer-Encoding"] == "7bit" and "Ünïcode" in html
    assert "&#220;n&#239;code" in part.get_content()


def text_part(settings, items: list[Item]) -> tuple[str, email.message.EmailMessage]:
    return _part(settings, items, "plain")


def test_the_text_part_goes_8bit_7bit_or_quoted_printable(tmp_path) -> None:
    """As it is: 8bit with non-ASCII, 7bit without; a line over 998 octets (which no
    SMTP server must take) quoted-printable, exact."""
    ascii_item = [Item(Paper(seq=1, id="a1", title="Plain title"), None)]
    for items, cte in [
        (ascii_item, "7bit"),
        ([Item(Paper(seq=1, id="u1", title="Über"), None)], "8bit"),
    ]:
        text, part = text_part(make_settings(), items)
        assert part["Content-Transfer-Encoding"] == cte
        assert part.get_content().replace("\r\n", "\n") == text
    footer = (REPO / "templates" / "partials" / "footer.txt").read_text()
    (tmp_path / "partials").mkdir()
    (tmp_path / "partials" / "footer.txt").write_text(footer + "ü " + "word " * 250 + "\n")
    text, part = text_part(make_settings(templates_dir=tmp_path), ascii_item)
    assert max(len(line.encode()) for line in text.split("\n")) > 998
    assert part["Content-Transfer-Encoding"] == "quoted-printable"
    assert part.get_content().replace("\r\n", "\n") == text


def test_ids_boundaries_and_dates_of_messages_built_in_a_row() -> None:
    """Each message its own Message-ID and boundary (the Date is formatted once per
    second and is now, in GMT); a given Message-ID and Date are used, a bad one refused."""
    settings = make_settings()
    rendered = render_golden(settings)
    before = time.time()
    built = [build_message(settings, f"r{i}@example.org", rendered) for i in range(200)]
    after = time.time()
    msgs = [parse(m.as_bytes()) for m in built]
    ids = [str(m["Message-ID"]) for m in msgs]
    assert len(set(ids)) == len(ids) and ids == [m.message_id for m in built]
    assert all(re.fullmatch(r"<[^<>\s]+@example\.org>", i) for i in ids)
    assert len({m.get_boundary() for m in msgs}) == len(msgs)
    for m, out in zip(msgs, built, strict=True):
        when = email.utils.parsedate_to_datetime(str(m["Date"]))
        assert int(before) <= when.timestamp() <= after
        assert f"\r\nDate: {out['Date']}\r\n".encode() in out.as_bytes()
        assert out["Date"].endswith(" GMT")
    given = build_message(
        settings, "r@example.org", rendered, "<x.1@example.org>", "Mon, 24 Nov 2026 06:00:00 +0000"
    )
    assert given["Message-ID"] == "<x.1@example.org>"
    assert b"\r\nDate: Mon, 24 Nov 2026 06:00:00 +0000\r\n" in given.as_bytes()
    with pytest.raises(DigestError):
        build_message(settings, "r@example.org", rendered, "no-angle@example.org")
