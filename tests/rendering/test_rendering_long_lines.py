"""`seven_bit` breaks a line over 998 octets at its tags' attributes unless it lies in
a raw-text element or a comment; only the long lines are cut out and measured
against the raw regions (looked for up to the last long line). The result is the
one a line-by-line pass over the whole page gives, for pages built to put long
lines before, inside, across and after raw regions, closed or not."""

from __future__ import annotations

import random

from digest.rendering.encoding import (
    _RAW_BYTES_RE,
    LINE_LIMIT,
    _broken,
    _lines_broken,
    _long_lines,
    seven_bit,
)


def line_by_line(data: bytes) -> bytes | None:
    """The reference: every line of the page measured, each long one checked against
    every raw region of the page."""
    raw = [m.span() for m in _RAW_BYTES_RE.finditer(data)]
    out = []
    start = 0
    for line in data.split(b"\n"):
        end = start + len(line)
        if len(line) > LINE_LIMIT:
            if any(a < end and start < b for a, b in raw):
                return None
            line = _broken(line)
        out.append(line)
        start = end + 1
    return b"\n".join(out)


MARKED = b'<mark class="hl" style="background: #fff3b0; color: #000">word</mark> '
PIECES = [
    b"<p>short line</p>\n",
    b"<p>" + MARKED * 15 + b"</p>\n",  # over 998 octets, breakable
    b"<p>" + b"x" * 1200 + b"</p>\n",  # over 998 octets with no attribute to break at
    b"<p>" + MARKED * 13 + b"</p>\n",  # just under or over, by the marks' count
    b"<style>p { color: red }</style>\n",
    b"<STYLE>\n" + b"a" * 1000 + b"\n</style>\n",  # a long line in a raw element
    b"<!--[if mso]><table><![endif]-->\n",
    b"<!-- open comment\n",  # a comment that closes later, or never
    b"-->\n",
    b"<script>var s = '",
    b"';</script>\n",
    b"\n",
    MARKED * 14,  # a long line without its line end (the page's last)
]


def test_long_lines_are_broken_as_a_line_by_line_pass_breaks_them() -> None:
    rng = random.Random(5)
    seen = {"broken": 0, "refused": 0, "unchanged": 0}
    for _ in range(3000):
        data = b"".join(rng.choice(PIECES) for _ in range(rng.randint(0, 12)))
        expected = line_by_line(data)
        assert _lines_broken(data) == expected, data
        assert [e - s for s, e in _long_lines(data)] == [
            len(line) for line in data.split(b"\n") if len(line) > LINE_LIMIT
        ]
        key = "refused" if expected is None else "unchanged" if expected == data else "broken"
        seen[key] += 1
    assert all(n > 100 for n in seen.values()), seen


def test_seven_bit_sends_a_page_with_a_dense_summary_broken() -> None:
    page = ("<style>p {}</style>\n<p>ü " + MARKED.decode() * 20 + "</p>\n<!-- end -->\n") * 3
    data = seven_bit(page)
    assert data is not None and b'\r\nclass="hl"' in data
    assert max(len(line) for line in data.split(b"\r\n")) <= LINE_LIMIT
    assert seven_bit("<!-- " + page) is None  # the long lines are in an open comment
