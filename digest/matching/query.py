"""The profile language: a hand-written lexer and recursive-descent parser.

    diffusion, "reinforcement learning", robot*        a list is an OR
    (LLM OR "language model") AND reasoning -survey    AND / OR / NOT / leading -
    title:transformer author:"Yann LeCun" cat:cs.*     fields
    keyword:agents topic:robot-learning                Hugging Face keywords, topics
    *                                                  every paper, by popularity

Words next to each other must all match (implicit AND); quote them for a phrase.
Operators are upper case (`AND`, `OR`, `NOT`); lower-case `and` is a word.

User text is never turned into a regular expression: the query becomes a tree of
terms, each a few sequences of analysed words compared word by word. Limits on the
length, the number of terms and the nesting keep every query cheap to parse and to
evaluate, and every error carries the 0-based position of its cause.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from digest.errors import QueryError
from digest.matching import topics as topic_catalogue
from digest.matching.nodes import (
    TEXT_FIELDS,
    And,
    Everything,
    Form,
    Leaf,
    Node,
    Not,
    Or,
    Pattern,
    Profile,
    Term,
)
from digest.matching.synonyms import load_table
from digest.matching.text import stem, words

MAX_QUERY_CHARS = 4000
MAX_TERMS = 200
MAX_DEPTH = 24
# Words in one phrase: checking a phrase costs its length at every candidate position.
MAX_PHRASE_WORDS = 32
MIN_PREFIX = 3

FIELD_NAMES = {
    "title": ("title",),
    "abstract": ("abstract",),
    "author": ("author",),
    "cat": ("category",),
    "keyword": ("keyword",),
    "topic": (),
}
_OPERAND_START = {"WORD", "PHRASE", "FIELD", "(", "NOT", "STAR"}
_DELIMS = frozenset('(),"')


@dataclass(frozen=True)
class Token:
    kind: str  # WORD PHRASE FIELD STAR AND OR NOT ( ) ,
    value: str
    pos: int


def lex(text: str) -> list[Token]:
    out: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "(),":
            out.append(Token(c, c, i))
            i += 1
        elif c == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise QueryError('unterminated quote: add the closing "', i, text)
            out.append(Token("PHRASE", text[i + 1 : end], i))
            i = end + 1
        elif c == "-":
            nxt = text[i + 1 : i + 2]
            if not nxt or nxt.isspace() or nxt in "),":
                raise QueryError("'-' must be followed by the term to exclude", i, text)
            out.append(Token("NOT", "-", i))
            i += 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in _DELIMS:
                j += 1
            out.extend(_lexeme(text, i, j))
            i = j
    return out


def _lexeme(text: str, i: int, j: int) -> list[Token]:
    lexeme = text[i:j]
    if lexeme in ("AND", "OR", "NOT"):
        return [Token(lexeme, lexeme, i)]
    if lexeme == "*":
        return [Token("STAR", lexeme, i)]
    colon = lexeme.find(":")
    if colon > 0 and lexeme[:colon].isalpha():
        name = lexeme[:colon].lower()
        if name not in FIELD_NAMES:
            raise QueryError(
                f"unknown field '{lexeme[:colon]}:' (fields: {', '.join(FIELD_NAMES)}); "
                "put text with a colon in quotes",
                i,
                text,
            )
        rest = lexeme[colon + 1 :]
        if rest.startswith("-"):  # the splitter would drop the `-`: the opposite meaning
            raise QueryError(
                f"to exclude, put '-' before the field: -{lexeme[:colon]}:{rest.lstrip('-')}",
                i + colon + 1,
                text,
            )
        field = Token("FIELD", name, i)
        if not rest:
            return [field]
        return [field, Token("STAR" if rest == "*" else "WORD", rest, i + colon + 1)]
    return [Token("WORD", lexeme, i)]


class Parser:
    """One parse of one query; `topic` labels every term (when parsing a topic)."""

    def __init__(self, text: str, topic: str | None = None) -> None:
        self.text = text
        self.topic = topic
        self.tokens: list[Token] = []
        self.at = 0
        self.terms = 0
        self.synonyms = load_table()

    def error(self, message: str, pos: int) -> QueryError:
        return QueryError(message, pos, self.text)

    # -------------------------------------------------------------- structure

    def parse(self) -> Node:
        if len(self.text) > MAX_QUERY_CHARS:
            raise self.error(
                f"the profile is too long: at most {MAX_QUERY_CHARS} characters", MAX_QUERY_CHARS
            )
        self.tokens = lex(self.text)
        node = self.or_expr(None, 0)
        if self.at < len(self.tokens):
            tok = self.tokens[self.at]
            raise self.error(f"unexpected {tok.value!r}: no '(' opened it", tok.pos)
        if node is None:
            raise self.error("the profile is empty: give at least one keyword", 0)
        return node

    def peek(self) -> Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> Token:
        tok = self.tokens[self.at]
        self.at += 1
        return tok

    def or_expr(self, field: str | None, depth: int) -> Node | None:
        items: list[Node] = []
        while (tok := self.peek()) is not None and tok.kind != ")":
            if tok.kind == ",":
                self.take()
            elif tok.kind == "OR":
                if not items:
                    raise self.error("OR needs a term before it", tok.pos)
                self.take()
                nxt = self.peek()
                if nxt is None or nxt.kind not in _OPERAND_START:
                    raise self.error("OR needs a term after it", tok.pos)
            elif tok.kind == "AND":
                raise self.error("AND needs a term before it", tok.pos)
            else:
                items.append(self.and_expr(field, depth))
        if not items:
            return None
        return items[0] if len(items) == 1 else Or(items)

    def and_expr(self, field: str | None, depth: int) -> Node:
        items = [self.unary(field, depth)]
        while (tok := self.peek()) is not None and (
            tok.kind == "AND" or tok.kind in _OPERAND_START
        ):
            if tok.kind == "AND":
                self.take()
                nxt = self.peek()
                if nxt is None or nxt.kind not in _OPERAND_START:
                    raise self.error("AND needs a term after it", tok.pos)
            items.append(self.unary(field, depth))
        return items[0] if len(items) == 1 else And(items)

    def unary(self, field: str | None, depth: int) -> Node:
        tok = self.take()
        if tok.kind == "NOT":
            self.check_depth(depth + 1, tok.pos)
            nxt = self.peek()
            if nxt is None or nxt.kind not in _OPERAND_START:
                raise self.error("NOT needs a term after it", tok.pos)
            return Not(self.unary(field, depth + 1))
        if tok.kind == "FIELD":
            nxt = self.peek()
            if nxt is None or nxt.kind not in {"WORD", "PHRASE", "(", "STAR"}:
                raise self.error(
                    f"'{tok.value}:' needs a word, a quoted phrase or a group after it", tok.pos
                )
            return self.primary(self.take(), tok.value, depth)
        return self.primary(tok, field, depth)

    def primary(self, tok: Token, field: str | None, depth: int) -> Node:
        if tok.kind == "(":
            self.check_depth(depth + 1, tok.pos)
            inner = self.or_expr(field, depth + 1)
            close = self.peek()
            if close is None or close.kind != ")":
                raise self.error("this '(' is never closed: add a ')'", tok.pos)
            self.take()
            if inner is None:
                raise self.error("empty parentheses", tok.pos)
            return inner
        if tok.kind == "STAR":
            if field is not None:
                raise self.error(
                    f"'{field}:*' is not allowed: '*' alone means every paper", tok.pos
                )
            return Everything()
        if tok.kind in ("WORD", "PHRASE"):
            return self.leaf(tok, field)
        raise self.error(f"expected a term, got {tok.value!r}", tok.pos)

    def check_depth(self, depth: int, pos: int) -> None:
        if depth > MAX_DEPTH:
            raise self.error(f"nested too deeply: at most {MAX_DEPTH} levels of ( ) and NOT", pos)

    # -------------------------------------------------------------- terms

    def count_term(self, pos: int) -> None:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise self.error(f"too many terms: at most {MAX_TERMS}", pos)

    def leaf(self, tok: Token, field: str | None) -> Node:
        self.count_term(tok.pos)
        if field == "topic":
            return self.topic_node(tok)
        try:
            return _leaf(tok.kind, tok.value, field, self.topic)
        except QueryError as exc:  # positions inside the term -> inside the query
            raise self.error(str(exc.args[0]), tok.pos + exc.position) from None

    def make_leaf(self, tok: Token, field: str | None) -> Node:
        start = tok.pos + (1 if tok.kind == "PHRASE" else 0)
        if field == "cat":
            return Leaf(self.category_term(tok, start))
        patterns = self.patterns(tok.value, start, tok.pos)
        fields = FIELD_NAMES[field] if field else TEXT_FIELDS
        forms = self.forms(patterns) if field != "author" else (tuple(patterns),)
        label = " ".join(tok.value.split())
        return Leaf(Term(label, fields, forms, self.topic))

    def patterns(self, raw: str, start: int, tok_pos: int) -> list[Pattern]:
        """The words of a term; `*` right after a word makes it a prefix."""
        out: list[Pattern] = []
        star_ok: set[int] = set()
        starts = {s for _, s, _ in words(raw)}
        found = list(words(raw))
        for k, (word, s, e) in enumerate(found):
            prefix = raw[e : e + 1] == "*"
            if prefix and e + 1 in starts:  # `rob*t` is not `rob* t`
                raise self.error("'*' may only end a word (as in robot*)", start + e)
            if prefix:
                star_ok.add(e)
                if _joined_length(raw, found, k) < MIN_PREFIX:
                    raise self.error(
                        f"a wildcard needs at least {MIN_PREFIX} letters before '*'", start + s
                    )
            out.append((word, True) if prefix else (stem(word), False))
        for k, ch in enumerate(raw):
            if ch == "*" and k not in star_ok:
                raise self.error("'*' may only end a word (as in robot*)", start + k)
        if not out:
            raise self.error(f"{raw.strip()!r} has no letters or digits to search for", tok_pos)
        if len(out) > MAX_PHRASE_WORDS:
            raise self.error(f"a phrase has at most {MAX_PHRASE_WORDS} words", tok_pos)
        return out

    def forms(self, patterns: list[Pattern]) -> tuple[Form, ...]:
        """The term's alternatives: its synonyms (none for a term with a wildcard)."""
        if any(prefix for _, prefix in patterns):
            return (tuple(patterns),)
        stems = tuple(t for t, _ in patterns)
        return tuple(tuple((s, False) for s in f) for f in self.synonyms.expand(stems))

    def category_term(self, tok: Token, start: int) -> Term:
        """`cat:cs.CL` exact, `cat:cs.*` any cs category, `cat:cs` the same as `cs.*`."""
        raw = tok.value.strip()
        value = raw.lower()
        star = value.find("*")
        if star >= 0 and star != len(value) - 1:
            raise self.error("'*' may only end a category (as in cs.*)", start + star)
        body = value.rstrip("*")
        if not body or not all(c.isascii() and (c.isalnum() or c in ".-") for c in body):
            raise self.error(
                f"{raw!r} is not an arXiv category such as cs.CL, cs.* or stat.ML", tok.pos
            )
        forms: tuple[Form, ...]
        if star >= 0:
            forms = (((body, True),),)
        elif "." not in body:
            forms = (((body, False),), ((body + ".", True),))
        else:
            forms = (((body, False),),)
        return Term(raw, ("category",), forms, self.topic)

    def topic_node(self, tok: Token) -> Node:
        name = tok.value.strip().lower()
        if self.topic is not None:
            raise self.error("a topic cannot include another topic", tok.pos)
        catalogue = topic_catalogue.load_catalogue()
        if name not in catalogue:
            close = [n for n in catalogue if name[:4] and n.startswith(name[:4])][:5]
            hint = f"did you mean {', '.join(close)}?" if close else "the README lists them"
            raise self.error(f"unknown topic {tok.value!r}: {hint}", tok.pos)
        return compile_topic(name)


def _joined_length(raw: str, found: list[tuple[str, int, int]], k: int) -> int:
    """Letters and digits of word `k` together with the words joined to it without a
    space (`GPT-4V*`: the tokeniser splits on `-`, but `gpt 4v*` as a phrase is as
    specific as the whole word, so it counts 5, not 2)."""
    total = len(found[k][0])
    while k > 0 and not any(c.isspace() for c in raw[found[k - 1][2] : found[k][1]]):
        k -= 1
        total += len(found[k][0])
    return total


OPERATOR_WORDS = {
    "and": "'{w}' is read as a word; write AND to combine terms",
    "or": "'{w}' is read as a word; write OR (or a comma) for either term",
    "not": "'{w}' is read as a word; write NOT (or -) to exclude a term",
}


def query_warnings(text: str) -> list[str]:
    """What a query probably does not mean: a lower-case `and` / `or` / `not` is a
    word the paper must contain, not an operator. Quoted or fielded words (`"salt and
    pepper"`, `title:not`) are deliberate and not reported. Empty for a query that
    does not lex (its error says more)."""
    try:
        tokens = lex(text)
    except QueryError:
        return []
    out: list[str] = []
    for before, tok in zip([None, *tokens], tokens, strict=False):
        if tok.kind != "WORD" or (before is not None and before.kind == "FIELD"):
            continue
        hint = OPERATOR_WORDS.get(tok.value.lower())
        if hint is not None:
            message = hint.format(w=tok.value)
            if message not in out:
                out.append(message)
    return out + _only_exclusions(text)


def _only_exclusions(text: str) -> list[str]:
    """An alternative made only of exclusions (`-survey`, or `diffusion, -survey`)
    matches every paper without them: valid, but rarely what was meant. `NOT *`
    matches no paper at all."""
    try:
        root = compile_profile(text).root
    except QueryError:
        return []
    out: list[str] = []
    for alt in root.children if isinstance(root, Or) else (root,):
        parts = alt.children if isinstance(alt, And) else (alt,)
        excluded = [_excluded(part) for part in parts]
        if any(isinstance(node, Everything) for node in excluded):
            out.append("'NOT *' matches no paper at all")
        elif all(node is not None for node in excluded):
            term = alt.leaves()[0][0]
            label = f"topic:{term.topic}" if term.topic else term.label
            out.append(
                f"'-{label}' alone matches every paper without it; "
                f"write '* -{label}' if that is what you mean"
            )
    return out


def _excluded(node: Node) -> Node | None:
    """What `node` excludes when it is an odd number of NOTs around a node; else None
    (`NOT NOT a` is `a`)."""
    flips = 0
    while isinstance(node, Not):
        node, flips = node.child, flips + 1
    return node if flips % 2 else None


# What the compile caches keep, least recently used first out. An edition of 100,000
# mostly distinct profiles would otherwise keep every one of them (about 1 kB each,
# with their terms) in every build worker: memory growing with the edition, not with
# its papers. Profiles shared by many subscribers stay (they are used again and
# again); the rest were needed for one chunk. Terms are fewer (a vocabulary's worth).
PROFILES_KEPT = 8192
TERMS_KEPT = 16384


@lru_cache(maxsize=TERMS_KEPT)
def _leaf(kind: str, value: str, field: str | None, topic: str | None) -> Node:
    """One term, compiled once and shared by every profile that writes it the same way
    (terms are immutable): 100,000 profiles hold far fewer distinct terms. Error
    positions are relative to the term; `Parser.leaf` shifts them."""
    return Parser(value, topic).make_leaf(Token(kind, value, 0), field)


@lru_cache(maxsize=256)
def compile_topic(name: str) -> Node:
    """A catalogue topic's tree, every term labelled with the topic's name."""
    topic = topic_catalogue.load_catalogue()[name]
    return Parser(topic.query, topic=name).parse()


@lru_cache(maxsize=4096)
def label_forms(label: str, synonyms: bool = True) -> tuple[Form, ...]:
    """The alternatives of a term from its label as written (for highlighting); an
    author term has no synonyms (`synonyms=False`), as when it was compiled."""
    parser = Parser(label)
    try:
        patterns = parser.patterns(label, 0, 0)
    except QueryError:
        return ()
    return parser.forms(patterns) if synonyms else (tuple(patterns),)


def _compile(text: str) -> Profile:
    return Profile.from_root(text, Parser(text).parse())


@lru_cache(maxsize=PROFILES_KEPT)
def compile_profile(text: str) -> Profile:
    """Parse and compile a profile once; the same text gives the same (immutable) Profile,
    so an edition with 100,000 subscribers does not parse 100,000 queries again."""
    return _compile(text)


def compile_stored(text: str) -> Profile:
    """A profile saved before the language grew operators may no longer parse; read it
    the way it was written then (comma-separated phrases) rather than drop the digest."""
    try:
        return compile_profile(text)
    except QueryError:
        parts = [p.replace('"', " ").strip() for p in text.split(",")]
        legacy = ", ".join(f'"{p}"' for p in parts if any(c.isalnum() for c in p))
        try:
            return compile_profile(legacy)
        except QueryError:  # nothing searchable at all: match nothing, harm no one
            return Profile.from_root(text, Or([]))


def topic_named(text: str) -> str | None:
    """The topic `text` names when it is exactly one `topic:NAME` term, written the way
    the web forms write it (the field name in any case, the topic's name as in the
    catalogue); None for anything else, including text that does not parse.

    The parser decides, so the forms and the matcher never disagree on what a topic
    term is: the name must resolve to the catalogue topic the compiled tree holds."""
    try:
        tokens = lex(text)
        root = compile_profile(text).root
    except QueryError:
        return None
    if (
        [t.kind for t in tokens] != ["FIELD", "WORD"]
        or tokens[0].value != "topic"
        or tokens[1].pos != tokens[0].pos + len("topic:")
    ):
        return None
    name = tokens[1].value
    return name if {term.topic for term, _ in root.leaves()} == {name} else None
