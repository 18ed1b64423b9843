"""The shortcuts rendering takes give exactly what the general code gives: text
cleaning and word splitting on ASCII, prefixes found by one regex, mail tokens from a
pre-keyed HMAC, a line too long for 7bit found without splitting; and the run's card cache never pushes compiled templates out."""

from __future__ import annotations

import base64
import re
from datetime import date

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from itsdangerous.encoding import base64_decode
from test_rendering_splice import realistic_digests

from digest import tokens
from digest.matching.highlight import TextPair, TextSpans, _words_of
from digest.matching.text import words
from digest.rendering import make_environment, render_digest
from digest.rendering.encoding import LINE_LIMIT, _has_long_line
from digest.rendering.text import _CONTROL_RE, clean

_SPACE_RE = re.compile(r"\s+")
# ASCII with the awkward characters over-represented, and some beyond ASCII
_ASCII = st.lists(
    st.sampled_from([*"ab z09-_'.*\t\n\r\x00\x1f\x7f\x0b\x1c", "Ab", "aB", "abz", "ba"])
).map("".join)
_ANY = st.text(
    st.one_of(
        st.characters(),
        st.sampled_from(["\u2028", "\ufeff", "\U0001fffe", "\x85", "\xa0", "\u200b", "\ud800"]),
    )
)


@hsettings(max_examples=400, deadline=None)
@given(st.one_of(_ASCII, _ANY))
def test_clean_is_the_regex_form(text: str) -> None:
    expected = _SPACE_RE.sub(" ", _CONTROL_RE.sub(" ", text)).strip()
    assert clean(text) == expected


@hsettings(max_examples=400, deadline=None)
@given(_ASCII)
def test_ascii_words_are_the_unicode_words(text: str) -> None:
    assert _words_of(text) == list(words(text))


@hsettings(max_examples=400, deadline=None)
@given(_ASCII, st.sampled_from(["a*", "ab*", "z0*", "a-b*", "b_*", "9*", "ba*"]))
def test_a_prefix_found_by_regex_is_found_in_the_words(text: str, label: str) -> None:
    by_regex = TextSpans(text)
    split = TextSpans(text)
    split._lower = None  # the general path: split into words, sorted
    assert by_regex.label_spans(label) == split.label_spans(label)


_WORDY = st.lists(
    st.sampled_from(["baby", "babies", "Babies", "bab", "abba", "abbas", "abbases", "ies", "s"])
    | st.sampled_from([*" -'.0a", "\n", "caches", "cache", "ches", "é", "babi", "sses"])
).map("".join)


@hsettings(max_examples=600, deadline=None)
@given(
    _WORDY,
    st.sampled_from(
        ["baby", "babies", "abbas", "abba*", "a", "b*", "ba*", "cache", "ches", "bab", "ies"]
        + ['"baby abba"', '"abba baby*"', '"a ba*"', "s", "sses", "babi*"]
    ),
)
def test_a_term_found_in_the_lower_cased_text_is_found_in_the_words(text: str, label: str) -> None:
    """Stems, prefixes and phrases found (or ruled out) by searching the text for
    what their words start with give the spans the split words give."""
    searched = TextSpans(text)
    split = TextSpans(text)
    split._lower = None
    assert searched.label_spans(label) == split.label_spans(label)


@hsettings(max_examples=300, deadline=None)
@given(
    _WORDY,
    st.one_of(_WORDY, _ANY),
    st.lists(st.sampled_from(["babies", "abba*", "a", "ba*", '"baby abba"', "ies", "é*"])),
)
def test_a_text_pair_gives_each_text_its_own_spans(first: str, second: str, labels) -> None:
    """A card's title and summary looked up together (`TextPair`, each label once,
    kept) give what each text looked up alone gives, asked once or twice."""
    pair = TextPair(first, second)
    alone = (TextSpans(first).spans(labels), TextSpans(second).spans(labels))
    assert pair.spans(labels) == alone
    assert pair.spans(labels[::-1]) == alone


# lines of lengths around the limit, and runs that straddle the search windows
_LINES = st.lists(
    st.one_of(
        st.sampled_from([0, 1, 60, 497, 498, 499, 500, 997, 998, 999, 1000, 1497, 2100]),
        st.integers(0, 2500),
    ),
    min_size=1,
    max_size=8,
).map(lambda lengths: b"\n".join(b"x" * n for n in lengths))


@hsettings(max_examples=600, deadline=None)
@given(_LINES)
def test_a_long_line_found_by_windows_is_one_found_by_splitting(data: bytes) -> None:
    assert _has_long_line(data) == (max(map(len, data.split(b"\n"))) > LINE_LIMIT)


def test_mail_tokens_are_itsdangerous_signatures() -> None:
    for purpose in tokens.MAIL_PURPOSES:
        for ident in (0, 7, 123_456, 10**11):
            signer = tokens._mail_signer("s3cret", purpose)
            raw = base64_decode(signer.get_signature(f"{purpose}:{ident}"))
            expected = base64.b32encode(raw[:16]).decode().rstrip("=").lower()
            assert tokens._mail_signature("s3cret", purpose, ident) == expected


def test_card_cache_rotation_keeps_the_compiled_templates() -> None:
    """The card cache once lived in Jinja's own template cache: every rotation of the
    cards made every template be loaded, CSS-inlined and compiled again."""
    from test_rendering import make_settings

    settings = make_settings()
    env = make_environment(settings)
    env.cards_limit = 20
    digests = realistic_digests(60, 80, [])
    day = date(2026, 11, 24)
    addr, items = digests[0]
    render_digest(env, settings, addr, items, day, "1:x")
    compiled = {n: env.get_template(n) for n in ("digest.html", "partials/card.html")}
    for i, (addr, items) in enumerate(digests):
        render_digest(env, settings, addr, items, day, f"{i}:x")
    assert len(env.old_cards) >= 20  # the cards did rotate
    assert all(env.get_template(n) is t for n, t in compiled.items())
