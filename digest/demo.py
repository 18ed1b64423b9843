"""`digest demo`: the whole product on one machine with nothing configured.

A throw-away SQLite database, the bundled sample papers, three demo subscribers, and
a built-in SMTP server that stores what it receives under ./outbox/.
"""

from __future__ import annotations

import email
import email.policy
import secrets
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from digest import pipeline, store
from digest.config import load_settings
from digest.errors import InputError
from digest.models import Subscriber, utcnow
from digest.smtp_sink import SmtpSink, clear_sink_files

DEMO_SUBSCRIBERS = [
    ("ada@example.org", '"reinforcement learning", alignment, "human feedback"'),
    (
        "grace@example.org",
        '"knowledge distillation", compression, tokenizers, "small language models"',
    ),
    ("alan@example.org", "audio, speech, multimodal, robotic"),
]


@dataclass
class DemoSummary:
    papers: int
    subscribers: int
    sent: int
    outbox: Path
    html_path: Path | None
    files: list[Path] = field(default_factory=list)

    def text(self) -> str:
        lines = [
            f"papers loaded:   {self.papers}",
            f"subscribers:     {self.subscribers}",
            f"digests sent:    {self.sent}",
            f"messages stored: {self.outbox.resolve()}/ ({len(self.files)} .eml files)",
        ]
        if self.html_path:
            lines.append(f"open this digest: {self.html_path.resolve()}")
        return "\n".join(lines)


def extract_html(eml: Path) -> Path:
    """Save the HTML part of a stored message beside it, for a browser to open."""
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    part = msg.get_body(preferencelist=("html",))
    target = eml.with_suffix(".html")
    target.write_text(part.get_content() if part else "", encoding="utf-8")
    return target


def run_demo(outbox: Path) -> DemoSummary:
    """The database lives in a temporary folder removed at the end: a demo leaves only
    the messages behind. Each run starts from an empty outbox: the messages of an
    earlier run (the sink's `NNNNNN-recipient.eml` and their `.html`) are removed,
    and nothing else in the folder is touched."""
    try:
        outbox.mkdir(parents=True, exist_ok=True)
        clear_sink_files(outbox)
    except OSError as exc:
        raise InputError(f"--outbox: cannot use {outbox}: {exc.strerror or exc}") from None
    with tempfile.TemporaryDirectory(prefix="digest-demo-") as workdir:
        return _run_demo(outbox, Path(workdir))


def _run_demo(outbox: Path, workdir: Path) -> DemoSummary:
    base = load_settings(environ={}, env_file=None)
    with SmtpSink(outbox) as sink:
        settings = replace(
            base,
            database_url=f"sqlite:///{workdir / 'demo.db'}",
            smtp_host="127.0.0.1",
            smtp_port=sink.port,
            smtp_security="none",
            transport="smtp",
            sources="sample",
            # a throw-away key for throw-away links: none signed with a published one
            secret_key=secrets.token_urlsafe(32),
        )
        engine = store.make_engine(settings.database_url)
        store.init_db(engine)
        fetched = pipeline.fetch_all(engine, settings)
        for address, keywords in DEMO_SUBSCRIBERS:
            store.add_subscriber(
                engine,
                Subscriber(email=address, keywords=keywords, max_papers=10, confirmed_at=utcnow()),
            )
        report = pipeline.run_once(engine, settings, fetch=False)
        engine.dispose()
        files = list(sink.handler.paths)
    html = extract_html(files[0]) if files else None
    return DemoSummary(
        papers=sum(r.new + r.known + r.updated for r in fetched),
        subscribers=len(DEMO_SUBSCRIBERS),
        sent=report.send.sent,
        outbox=outbox,
        html_path=html,
        files=files,
    )
