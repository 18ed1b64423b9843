"""Turning raw paper fields into text a reader is glad to see: LaTeX made readable,
author lists shortened, summaries cut at a sentence, every field bounded in size.

Everything here is plain text in, plain text out; escaping is the templates' job.
All functions run in time linear in a bounded prefix of their input, so a 1 MB
abstract costs no more than a normal one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from urllib.parse import urlsplit

from markupsafe import escape

# Work on at most this much of any field; nothing we show is longer.
SCAN_LIMIT = 8000
TITLE_LIMIT = 300
AUTHOR_NAME_LIMIT = 80
CATEGORY_LIMIT = 40
URL_LIMIT = 2000

# Control and bidi-override characters, lone surrogates and Unicode noncharacters:
# none of them belongs in a title, and each can break a parser or a mail client.
_NONCHARACTERS = "".join(f"{chr(p | 0xFFFE)}{chr(p | 0xFFFF)}" for p in range(0, 0x110000, 0x10000))
_CONTROL_RE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u2028-\u202e\u2066-\u2069"
    f"\ufeff\ud800-\udfff\ufdd0-\ufdef{_NONCHARACTERS}]"
)
# `_CONTROL_RE` on ASCII text (most fields): a small class the regex engine checks
# ten times faster than one with astral ranges.
_ASCII_CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
_NOT_IN_URLS = frozenset('"<>\\^`{|}')

GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε",
    "varepsilon": "ε", "zeta": "ζ", "eta": "η", "theta": "θ", "vartheta": "ϑ",
    "iota": "ι", "kappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ",
    "pi": "π", "rho": "ρ", "sigma": "σ", "tau": "τ", "upsilon": "υ", "phi": "φ",
    "varphi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω", "Gamma": "Γ",
    "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Xi": "Ξ", "Pi": "Π", "Sigma": "Σ",
    "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω",
}  # fmt: skip
SYMBOLS = {
    "times": "×", "cdot": "·", "leq": "≤", "le": "≤", "geq": "≥", "ge": "≥",
    "neq": "≠", "ne": "≠", "approx": "≈", "sim": "~", "simeq": "≃", "infty": "∞",
    "pm": "±", "mp": "∓", "to": "→", "rightarrow": "→", "leftarrow": "←",
    "Rightarrow": "⇒", "in": "∈", "notin": "∉", "subset": "⊂", "subseteq": "⊆",
    "cup": "∪", "cap": "∩", "sum": "Σ", "prod": "Π", "int": "∫", "partial": "∂",
    "nabla": "∇", "forall": "∀", "exists": "∃", "ell": "ℓ", "propto": "∝",
    "ll": "≪", "gg": "≫", "circ": "∘", "log": "log", "exp": "exp", "max": "max",
    "min": "min", "sqrt": "√", "ldots": "…", "cdots": "⋯", "dots": "…",
    "mathbb": "", "mathbf": "", "mathrm": "", "mathcal": "", "mathit": "",
    "text": "", "textbf": "", "textit": "", "emph": "", "texttt": "", "textrm": "",
    "operatorname": "", "boldsymbol": "", "bm": "", "left": "", "right": "",
    "big": "", "Big": "", "quad": " ", "qquad": " ", "%": "%", "&": "&",
    "_": "_", "#": "#", "$": "$", "{": "{", "}": "}", ",": " ", ";": " ", "!": "",
    "textbackslash": "\\", "LaTeX": "LaTeX", "TeX": "TeX",
}  # fmt: skip
ACCENTS = {'"': "\u0308", "'": "\u0301", "`": "\u0300", "^": "\u0302", "~": "\u0303",
           "c": "\u0327", "v": "\u030c", "H": "\u030b", "=": "\u0304", "u": "\u0306", ".": "\u0307"}  # fmt: skip
SUPERSCRIPT = str.maketrans("0123456789+-=()n", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿ")
SUBSCRIPT = str.maketrans("0123456789+-=()", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎")

_ACCENT_RE = re.compile(
    r"""\\([\"'`^~=.]|[cvuH](?=[{\s]))\s*(?:\{\s*\\?([A-Za-z])\s*\}|\\?([A-Za-z]))"""
)
_MATH_RE = re.compile(r"\$\$?([^$]{1,500})\$\$?")
_FRAC_RE = re.compile(r"\\[dt]?frac\s*\{([^{}]{0,100})\}\s*\{([^{}]{0,100})\}")
_SCRIPT_RE = re.compile(r"([\^_])\s*(?:\{([^{}]{0,40})\}|(\\?[A-Za-z0-9+\-]))")
_COMMAND_RE = re.compile(r"\\([A-Za-z]+|[%&_#${},;!])")


def clean(text: str | None, limit: int = SCAN_LIMIT) -> str:
    """One line of text: no control or bidi-override characters, single spaces."""
    if not text:
        return ""
    text = text[:limit]
    text = (_ASCII_CONTROL_RE if text.isascii() else _CONTROL_RE).sub(" ", text)
    return " ".join(text.split())  # runs of whitespace (str.isspace, as regex \s) as one


def _accent(m: re.Match[str]) -> str:
    letter = m.group(2) or m.group(3)
    return unicodedata.normalize("NFC", letter + ACCENTS[m.group(1)])


def _script(m: re.Match[str]) -> str:
    body = m.group(2) if m.group(2) is not None else m.group(3)
    body = _COMMAND_RE.sub(_command, body).strip()
    table = SUPERSCRIPT if m.group(1) == "^" else SUBSCRIPT
    converted = body.translate(table)
    if all(ch != orig or ch in " " for ch, orig in zip(converted, body, strict=True)):
        return converted
    return ("^" if m.group(1) == "^" else "_") + (body if len(body) == 1 else f"({body})")


def _command(m: re.Match[str]) -> str:
    name = m.group(1)
    if name in GREEK:
        return GREEK[name]
    return SYMBOLS.get(name, name)


def _math(m: re.Match[str]) -> str:
    body = m.group(1)
    body = _FRAC_RE.sub(r"\1/\2", body)
    body = _SCRIPT_RE.sub(_script, body)
    body = _COMMAND_RE.sub(_command, body)
    return body.replace("{", "").replace("}", "").replace("~", " ")


def latex_to_text(text: str) -> str:
    """`$\\alpha$-divergence` -> `α-divergence`, `T\\"ULU` -> `TÜLU`, `$x^{2}$` -> `x²`.

    Only what readers meet in titles and abstracts; anything unknown keeps its name
    without the backslash, so nothing is lost and nothing looks like markup.
    """
    if "\\" not in text and "$" not in text:
        return text
    text = _ACCENT_RE.sub(_accent, text)
    text = _MATH_RE.sub(_math, text)
    text = _COMMAND_RE.sub(_command, text)
    return text.replace("\\", "").replace("{", "").replace("}", "")


def readable(text: str | None, limit: int = SCAN_LIMIT) -> str:
    return clean(latex_to_text(clean(text, limit)), limit)


def shorten(text: str, limit: int) -> str:
    """Cut at a word boundary with an ellipsis when longer than `limit` characters."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + "…"


def shorten_authors(authors: Sequence[str], keep: int = 3, total_limit: int = 5) -> str:
    """`A, B, C ... +12` for long lists; the whole list when it has `total_limit` or
    fewer names. Each name is bounded, so 5,000 authors cost as little as five."""
    names = [clean(a, AUTHOR_NAME_LIMIT * 2) for a in list(authors[: total_limit + 1])]
    names = [shorten(n, AUTHOR_NAME_LIMIT) for n in names if n]
    if len(authors) <= total_limit:
        return ", ".join(names)
    return ", ".join(names[:keep]) + f" ... +{len(authors) - keep}"


_ABBREVIATIONS = ("e.g.", "i.e.", "et al.", "etc.", "vs.", "fig.", "eq.", "cf.", "approx.", "resp.", "no.", "sec.")  # fmt: skip
_SENTENCE_END_RE = re.compile(r"[.!?](?=\s+[\"'(\[]?[A-Z0-9])")


def cut_summary(text: str, limit: int = 420, minimum: int = 120) -> str:
    """The start of `text`, ending at the last sentence boundary before `limit`, or
    at a word with an ellipsis if no sentence ends between `minimum` and `limit`."""
    if len(text) <= limit:
        return text
    window = text[: limit + 1]
    best = -1
    for m in _SENTENCE_END_RE.finditer(window):
        end = m.end()
        if end < minimum or end > limit:
            continue
        head = window[:end].casefold()
        if head.endswith(_ABBREVIATIONS):
            continue
        best = end
    if best > 0:
        return window[:best]
    return shorten(text, limit)


def safe_url(url: str | None) -> str | None:
    """An http(s) URL fit for an href, or None: no javascript:, no whitespace or
    control characters, bounded length."""
    if not url:
        return None
    url = url.strip()
    if len(url) > URL_LIMIT or not url.lower().startswith(("https://", "http://")):
        return None
    if _CONTROL_RE.search(url) or any(ch.isspace() or ch in _NOT_IN_URLS for ch in url):
        return None
    if not urlsplit(url).netloc:
        return None
    return url


def html_escaped(value: str) -> str:
    """`str(escape(value))`, without the Markup object for a value with nothing to
    escape (most: links, addresses, a card's reason)."""
    if "&" in value or "<" in value or ">" in value or '"' in value or "'" in value:
        return str(escape(value))
    return value
