"""Structured logs: one line per event, plain `key=value` text or JSON.

`DIGEST_LOG_FORMAT=json` gives one JSON object per line (for journald, Loki and the
like); the default is a readable line. Code logs an event name plus fields with
`log_event(logger, "digest.sent", recipient=..., edition=...)`, so both formats carry
the same facts and nothing has to parse a sentence.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

_FIELDS = "digest_fields"


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event with structured fields."""
    logger.log(level, event, extra={_FIELDS: fields})


def _one_line(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return json.dumps(text) if (" " in text or "=" in text or not text) else text


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, event, then the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in getattr(record, _FIELDS, {}).items():
            data.setdefault(key, value)
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`2026-03-08T07:30:00Z info digest.scheduler event key=value ...` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        parts = [ts, record.levelname.lower(), record.name, _one_line(record.getMessage())]
        for key, value in getattr(record, _FIELDS, {}).items():
            parts.append(f"{key}={_one_line(value)}")
        if record.exc_info:
            parts.append(f"error={_one_line(self.formatException(record.exc_info))}")
        return " ".join(parts)


def configure_logging(log_format: str = "text", level: str = "info", stream: TextIO | None = None):
    """Send every `digest.*`, `apscheduler.*`, `uvicorn.*` and `python_multipart.*`
    record to `stream` (stderr) in the chosen format; returns the handler so a caller
    (or a test) can remove it. uvicorn runs with `log_config=None`: without this its errors (a crashed
    request, with its traceback) would reach stderr as multi-line plain text."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    for name in ("digest", "apscheduler", "uvicorn", "python_multipart"):
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if getattr(h, "_digest_handler", False)]:
            logger.removeHandler(old)
        handler._digest_handler = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.setLevel(level.upper())
        logger.propagate = False
    # APScheduler reports every job run at INFO; that is noise every few minutes.
    logging.getLogger("apscheduler").setLevel(
        max(logging.WARNING, logging.getLevelName(level.upper()))
    )
    # python-multipart warns about each malformed form body a visitor sends; the web
    # app answers those with a 400 itself: not the operator's concern, and unrouted
    # its warning came out as a bare line on stderr (in the middle of JSON logs).
    logging.getLogger("python_multipart").setLevel(
        max(logging.ERROR, logging.getLevelName(level.upper()))
    )
    return handler
