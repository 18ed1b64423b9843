"""`digest preview`: render what a subscriber (or an ad-hoc profile) would get, for a
template author's edit-and-reload loop.

With no papers stored it renders against the bundled sample, so a template author
always has something to look at. `--serve` re-renders when any template file changes
(the check is a scan of modification times, cheap enough per request).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import html
import http.server
import multiprocessing
import multiprocessing.context
import multiprocessing.process
import resource
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from multiprocessing import forkserver, resource_tracker
from multiprocessing.connection import Connection
from pathlib import Path

from digest import semantic, store
from digest.config import Settings
from digest.errors import DigestError, InputError
from digest.matching import Match, Profile, Weights, profile_from_input, rank
from digest.models import Paper, utcnow
from digest.rendering import (
    Item,
    build_message,
    make_environment,
    render_digest,
    template_dirs,
)
from digest.rendering.environment import TemplateProblem
from digest.rendering.message import recipient
from digest.sources.file import FileSource, sample_path
from digest.store import Engine

PREVIEW_ADDRESS = "preview@example.org"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
FORMATS = {"html": "html", "text": "txt", "eml": "eml"}
CONTENT_TYPES = {
    "html": "text/html; charset=utf-8",
    "text": "text/plain; charset=utf-8",
    "eml": "message/rfc822",
}


# The longest range() a template may loop over in a preview, as Jinja's sandbox
# allows: a template author's `range(10**9)` then fails at once, naming the file and
# line, instead of holding `digest preview` (or its --serve page) for minutes. Only
# the preview's environment has it, so editions render as fast as before.
PREVIEW_MAX_RANGE = 100_000


# A preview's render runs in a child process killed after PREVIEW_RENDER_SECONDS
# (a template author's runaway loop or filter chain ends in a clear error, not a hung
# command), with its address space capped at PREVIEW_MEMORY_BYTES (`"x" * 10**10`
# fails at once instead of filling the machine's memory first).
PREVIEW_RENDER_SECONDS = 10.0
PREVIEW_MEMORY_BYTES = 2 << 30
OUT_OF_MEMORY = f"out of memory (a preview may use {PREVIEW_MEMORY_BYTES >> 30} GiB)"


# The steps all the range() calls of one render may take together: each range() under
# the cap, nested, still multiplies (`range(99999)` inside `range(99999)` is 10**10).
PREVIEW_MAX_STEPS = 1_000_000


class CappedRange:
    """`range` for one preview render, refusing one range() of more than
    PREVIEW_MAX_RANGE items and more than PREVIEW_MAX_STEPS items in all."""

    def __init__(self) -> None:
        self.steps = 0

    def __call__(self, *args: int) -> range:
        items = range(*args)
        if len(items) > PREVIEW_MAX_RANGE:
            raise OverflowError(
                f"range() of {len(items):,} items; digest preview allows {PREVIEW_MAX_RANGE:,} "
                "(a loop this long would hold every digest of an edition too)"
            )
        self.steps += len(items)
        if self.steps > PREVIEW_MAX_STEPS:
            raise OverflowError(
                f"range() loops of more than {PREVIEW_MAX_STEPS:,} steps in all (nested "
                "loops multiply); a loop this long would hold every digest of an edition too"
            )
        return items


@dataclass(frozen=True)
class PreviewRequest:
    """Who the preview is for and on which papers."""

    email: str | None = None
    keywords: str | None = None
    on: date | None = None


def sample_papers() -> list[Paper]:
    batch = FileSource(sample_path(), name="sample").fetch({})
    return [
        Paper(seq=i, **{**r.__dict__, "sources": [r.source]}) for i, r in enumerate(batch.records)
    ]


def _first_seen_on(paper: Paper, day: date) -> bool:
    seen = paper.first_seen
    return isinstance(seen, datetime) and seen.date() == day


def preview_papers(engine: Engine, on: date | None = None, limit: int = 500) -> list[Paper]:
    """The latest stored papers, or those published (or first seen) on `on`; the
    bundled sample when the database holds none at all."""
    stored = store.list_papers(engine, since=on, limit=None if on else limit)
    papers = stored or sample_papers()
    if on is not None:
        papers = [p for p in papers if p.published == on or _first_seen_on(p, on)]
        if not papers:
            where = "in the database" if stored else "in the bundled sample"
            raise InputError(f"--date: no papers from {on.isoformat()} {where}")
    return papers[:limit]


def _profile_for(
    engine: Engine, settings: Settings, request: PreviewRequest
) -> tuple[Profile, str, str]:
    """(profile, its text as written, the address the preview is for).

    A subscriber's stored profile is read as the pipeline reads it (older profiles may
    predate the operators); an ad-hoc --keywords profile must parse."""
    if request.email and request.keywords:
        raise InputError("give either a subscriber address or --keywords, not both")
    if request.email:
        sub = store.get_subscriber(engine, store.normalise_email(request.email))
        if sub is None:
            raise InputError(f"no subscriber with address {request.email}")
        profile = semantic.profiles_of(engine, settings, [sub])[int(sub.id or 0)]
        return profile, sub.keywords or sub.interest or "", sub.email
    if request.keywords is None:
        # No profile given: the trending digest (`*`, ranked by popularity).
        return profile_from_input("*", settings.max_papers), "*", PREVIEW_ADDRESS
    if not request.keywords.strip():
        raise InputError("--keywords: the profile is empty")
    profile = profile_from_input(request.keywords, settings.max_papers)
    return profile, request.keywords, PREVIEW_ADDRESS


def render_preview(
    engine: Engine,
    settings: Settings,
    email: str | None,
    keywords: str | None,
    fmt: str,
    on: date | None = None,
    to_addr: str | None = None,
) -> bytes:
    """The preview as bytes in `fmt` (html, text or eml)."""
    if fmt not in FORMATS:
        raise InputError(f"--format: expected html, text or eml, got {fmt!r}")
    _start_renderer()  # it starts up while the papers are read and matched
    request = PreviewRequest(email, keywords, on)
    profile, words, address = _profile_for(engine, settings, request)
    papers = preview_papers(engine, on)
    ready = semantic.paper_set(engine, settings, papers, [profile])
    matches = rank({0: profile}, ready, Weights.from_settings(settings))[0]
    by_id = {p.id: p for p in papers}
    # Each match with its hits worked out here: a lazy one would carry the whole
    # matching index to the render's process.
    items = [
        Item(by_id[m.paper_id], Match(m.paper_id, m.score, list(m.hits)))
        for m in matches
        if m.paper_id in by_id
    ]
    job = RenderJob(settings, address, items, on or utcnow().date(), words, fmt, to_addr)
    return render_with_deadline(job, PREVIEW_RENDER_SECONDS)


@dataclass(frozen=True)
class RenderJob:
    """What rendering one preview takes, sent to the process that renders it."""

    settings: Settings
    address: str
    items: list[Item]
    edition: date
    words: str
    fmt: str
    to_addr: str | None = None


def render_job(job: RenderJob) -> bytes:
    """The preview's bytes in `job.fmt` (run in a process of its own: see
    `render_with_deadline`)."""
    env = make_environment(job.settings)
    env.globals["range"] = CappedRange()  # a fresh budget per render
    rendered = render_digest(
        env, job.settings, job.address, job.items, job.edition, "preview", job.words
    )
    if job.fmt == "html":
        return rendered.html.encode("utf-8")
    if job.fmt == "text":
        return rendered.text.encode("utf-8")
    return build_message(job.settings, job.to_addr or job.address, rendered).as_bytes()


def render_with_deadline(job: RenderJob, seconds: float) -> bytes:
    """`render_job(job)` in a child process, killed after `seconds`; a clear error
    then. A template can run long without a range(): `"x" * 10**9`, a loop over a
    huge string, a deep filter chain. Jinja's render cannot be stopped from inside
    the process (a thread cannot be killed, and one C call such as a string
    multiplication never returns to Python for a signal to land), so it runs where it
    can be killed: a child forked from a forkserver (started once, single-threaded,
    so forking is safe beside the --serve threads), with its memory capped too."""
    ctx = _start_renderer()
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_render_child, args=(job, send), daemon=True)
    reply: tuple[bool, bytes | str] | None = None
    try:
        _start_holding_ctrl_c(child)
        send.close()
        in_time = receive.poll(seconds)  # also True when the child died
        if in_time:
            with contextlib.suppress(EOFError):  # died without a word
                reply = receive.recv()
    finally:
        send.close()
        # Killed before its pipe is closed: a child still writing (Ctrl-C here)
        # would otherwise die of a broken pipe, with a traceback on the terminal.
        if child.pid is not None:
            if child.is_alive():
                child.kill()
            child.join()
        receive.close()
    if not in_time:
        raise TemplateProblem(
            f"the templates took longer than {seconds:g} s to render the preview (a loop "
            "or filter chain too long for a digest?); the render was stopped"
        )
    if reply is None:
        raise TemplateProblem(
            f"the preview's render stopped unexpectedly (exit code {child.exitcode})"
        )
    ok, payload = reply
    if not ok or not isinstance(payload, bytes):
        raise TemplateProblem(str(payload))
    return payload


def _start_renderer() -> multiprocessing.context.ForkServerContext:
    """The forkserver the renders fork from, started (once per process) with this
    module imported, so each render's child starts warm."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["digest.preview"])
    # Started with SIGINT blocked (a mask is inherited through fork and exec): Ctrl-C
    # reaches the terminal's whole process group, and the forkserver, still importing,
    # and each render's child would print a KeyboardInterrupt traceback each. The
    # command alone answers Ctrl-C, and kills the child (`render_with_deadline`).
    # A mask, not a handler: this may run in a --serve thread. The resource tracker
    # first: starting it unblocks SIGINT (the same trick, bpo-33613).
    resource_tracker.ensure_running()
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        forkserver.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    return ctx


def _start_holding_ctrl_c(child: multiprocessing.process.BaseProcess) -> None:
    """`child.start()`, a Ctrl-C during it answered once the child is known: start
    waits for the forkserver (still importing on a first preview) to fork, and an
    interrupt there would leave a child no one kills, rendering on after the command
    ended. SIGINT is handled in the main thread only; --serve's renders run in others."""
    if threading.current_thread() is not threading.main_thread():
        child.start()
        return
    held: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        child.start()
    finally:
        signal.signal(signal.SIGINT, previous)
    if held:
        signal.raise_signal(signal.SIGINT)  # what the command does on Ctrl-C, now


def _render_child(job: RenderJob, send: Connection) -> None:
    """The child's side: render under a memory cap, send back (True, bytes) or
    (False, the one-line error)."""
    resource.setrlimit(resource.RLIMIT_AS, (PREVIEW_MEMORY_BYTES, PREVIEW_MEMORY_BYTES))
    result: tuple[bool, bytes | str]
    try:
        result = (True, render_job(job))
    except DigestError as exc:
        message = str(exc)
        if isinstance(exc.__context__, MemoryError):  # a template's: its str() is ""
            message = f"{message.rstrip()} {OUT_OF_MEMORY}"
        result = (False, message)
    except MemoryError:
        result = (False, f"the preview's render ran {OUT_OF_MEMORY}")
    except Exception as exc:  # a bug: said in one line, not lost with the child
        result = (False, f"the preview's render failed: {type(exc).__name__}: {exc}")
    send.send(result)
    send.close()


def send_test(engine: Engine, settings: Settings, request: PreviewRequest, to_addr: str) -> str:
    """Send the preview to `to_addr` through the configured transport; the reply."""
    from digest.delivery import make_transport

    to = recipient(to_addr)
    data = render_preview(
        engine, settings, request.email, request.keywords, "eml", request.on, to_addr=to
    )
    sender = email.utils.parseaddr(settings.from_address)[1]

    async def go() -> str:
        transport = make_transport(settings)
        await transport.open()
        try:
            result = await transport.send(sender, to, data)
        finally:
            await transport.close()
        if not result.ok:
            raise DigestError(f"the test email to {to} was not accepted: {result.reply}")
        return result.reply

    return asyncio.run(go())


# ---------------------------------------------------------------- --serve


def templates_stamp(settings: Settings) -> tuple[tuple[str, int, int], ...]:
    """Every template file with its modification time: changes when any file does."""
    stamp = []
    for folder in template_dirs(settings):
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file() and "web" not in path.relative_to(folder).parts[:1]:
                info = path.stat()
                stamp.append((str(path), info.st_mtime_ns, info.st_size))
    return tuple(stamp)


RELOAD_SCRIPT = """<script>
(function () {
  var seen = null;
  setInterval(function () {
    fetch("/__stamp").then(function (r) { return r.text(); }).then(function (s) {
      if (seen === null) { seen = s; } else if (s !== seen) { location.reload(); }
    }).catch(function () {});
  }, 700);
})();
</script>"""


class PreviewServer:
    """A loopback HTTP server: `/` the HTML, `/text`, `/eml`; each request re-renders
    when a template file changed since the last render. Template errors are shown
    in the page (file and line), not raised, so the author can fix and reload.
    Requests naming any other host are refused (421): see `hosts`."""

    def __init__(
        self, render: Callable[[str], bytes], stamp: Callable[[], object], port: int = 0
    ) -> None:
        self._render = render
        self._stamp = stamp
        self._cache: dict[str, tuple[object, int, bytes]] = {}
        self._lock = threading.Lock()
        handler = self._handler()
        try:
            self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError as exc:
            raise InputError(f"--port: cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
        self.port = self.httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def hosts(self) -> frozenset[str]:
        """The Host headers served: loopback by name or address, on our port."""
        return frozenset(f"{name}:{self.port}" for name in LOOPBACK_NAMES)

    def page(self, fmt: str) -> tuple[int, bytes]:
        with self._lock:
            stamp = self._stamp()
            cached = self._cache.get(fmt)
            if cached and cached[0] == stamp:
                return cached[1], cached[2]
            try:
                status, body = 200, self._render(fmt)
            except DigestError as exc:
                status = 500
                body = (
                    "<!DOCTYPE html><html lang='en'><meta charset='utf-8'><title>Error</title>"
                    f"<pre>{html.escape(str(exc))}</pre></html>"
                ).encode()
                if fmt != "html":
                    body = str(exc).encode()
            self._cache[fmt] = (stamp, status, body)
            return status, body

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                if self.headers.get("Host", "") not in server.hosts():
                    # DNS rebinding: a page whose host name resolves to 127.0.0.1
                    # must not read a subscriber's preview (their signed links).
                    self.send_error(421, "Misdirected Request: open the preview by 127.0.0.1")
                    return
                path = self.path.split("?", 1)[0]
                if path == "/__stamp":
                    body, ctype, status = str(hash(server._stamp())).encode(), "text/plain", 200
                else:
                    fmt = {"/": "html", "/text": "text", "/eml": "eml"}.get(path)
                    if fmt is None:
                        self.send_error(404)
                        return
                    status, body = server.page(fmt)
                    ctype = CONTENT_TYPES["html" if status != 200 and fmt == "html" else fmt]
                    if fmt == "eml":
                        ctype = "text/plain; charset=utf-8"
                    if fmt == "html":
                        body = body.replace(b"</body>", RELOAD_SCRIPT.encode() + b"</body>", 1)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return

        return Handler

    def serve_forever(self) -> None:
        try:
            self.httpd.serve_forever(poll_interval=0.2)
        finally:
            self.httpd.server_close()

    def shutdown(self) -> None:
        self.httpd.shutdown()
