"""Logging set-up for the commands: what lands on stderr, and how.

- On a terminal (text format): Rich's coloured handler, for a person watching.
- Anywhere else (a file, a pipe, journald, a container log): one plain line per record, never
  wrapped, ``2026-12-01T21:32:20.123Z INFO jobimporter.feedjob: message``, times in UTC.
- ``JOBIMPORTER_LOG_FORMAT=json``: one JSON object per line, with the context keys the code logs
  (``run_id``, ``feed_id``, ``feed_url``) as fields.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal

from rich.console import Console
from rich.logging import RichHandler

_NOISY = ("httpx", "httpcore", "bullmq", "alembic", "aiosqlite")
# Attributes every LogRecord has; anything else was passed as ``extra=`` and belongs in the JSON.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def _utc(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class PlainFormatter(logging.Formatter):
    """``<ISO 8601 UTC> <LEVEL> <logger>: <message>`` on one line (tracebacks follow, indented)."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_utc(record)} {record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time``, ``level``, ``logger``, ``message`` and the extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": _utc(record), "level": record.levelname, "logger": record.name}
        entry["message"] = record.getMessage()
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def setup_logging(
    level: str, fmt: Literal["text", "json"] = "text", *, console: Console | None = None
) -> None:
    """Route every record at ``level`` and above to stderr, in the form that fits where it goes."""
    handler: logging.Handler
    if fmt == "json":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    elif sys.stderr.isatty():
        handler = RichHandler(console=console or Console(stderr=True), show_path=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(PlainFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
