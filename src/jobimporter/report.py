"""What the commands print for a person: a run's summary, the history, the live progress.

Laid out for the terminal's width (80 columns when it is not a terminal): a table when the columns
fit, otherwise one block per row (its name, then its figures). A failure's reason goes on its own
lines under its row, wrapped between words, never cut into one word per line. Plain text: nothing
in a feed's name or an error message is read as markup.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field

from jobimporter.models import ImportEntry, ImportRun

COUNTS = ("new", "updated", "unchanged", "failed")
_GAP = "  "
_MIN_NAME = 16  # a name column narrower than this reads worse than the stacked layout
_INDENT = "    "


def terminal_width() -> int:
    """The terminal's width, ``$COLUMNS`` if set, else 80; never under 40."""
    return max(40, shutil.get_terminal_size((80, 24)).columns)


@dataclass(frozen=True, slots=True)
class Row:
    """One line of a report: a name, its figures (in column order) and notes printed under it."""

    name: str
    cells: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())


def render(headers: Sequence[str], rows: Sequence[Row], width: int, *, words: int = 1) -> list[str]:
    """A table of ``rows`` (the name, then ``words`` left-aligned cells, then right-aligned figures),
    or one block per row when the table would not fit ``width``."""
    widths = [max([len(h), *(len(r.cells[i]) for r in rows)]) for i, h in enumerate(headers[1:])]
    fixed = sum(widths) + len(_GAP) * len(widths)
    longest = max([len(headers[0]), *(len(r.name) for r in rows)])
    name_width = min(width - fixed, longest)
    if name_width < min(longest, _MIN_NAME):
        return _stacked(headers, rows, width, words)
    lines = [_line(headers[0], headers[1:], name_width, widths, words)]
    for row in rows:
        names = textwrap.wrap(row.name, name_width, break_on_hyphens=False) or [""]
        lines.append(_line(names[0], row.cells, name_width, widths, words))
        lines += names[1:]
        lines += _notes(row.notes, width)
    return lines


def _line(name: str, cells: Sequence[str], name_width: int, widths: Sequence[int], words: int) -> str:
    parts = [name.ljust(name_width)]
    for index, (cell, cell_width) in enumerate(zip(cells, widths, strict=True)):
        parts.append(cell.ljust(cell_width) if index < words else cell.rjust(cell_width))
    return _GAP.join(parts).rstrip()


def _stacked(headers: Sequence[str], rows: Sequence[Row], width: int, words: int) -> list[str]:
    lines: list[str] = []
    for row in rows:
        lines += textwrap.wrap(row.name, width, break_on_hyphens=False) or [""]
        labelled = zip(headers[1 + words :], row.cells[words:], strict=True)
        figures = [c for c in row.cells[:words] if c] + [f"{h} {c}" for h, c in labelled if c]
        lines += _packed(figures, width, indent="  ")
        lines += _notes(row.notes, width)
    return lines


def _packed(tokens: Sequence[str], width: int, *, indent: str, separator: str = " · ") -> list[str]:
    """``tokens`` joined by ``separator``, a new line only ever between two tokens."""
    lines: list[str] = []
    line = ""
    for token in tokens:
        candidate = f"{line}{separator}{token}" if line else token
        if line and len(indent) + len(candidate) > width:
            lines.append(indent + line)
            candidate = token
        line = candidate
    if line:
        lines.append(indent + line)
    return lines


def _notes(notes: Sequence[str], width: int) -> list[str]:
    wrapped: list[str] = []
    for note in notes:
        wrapped += textwrap.wrap(
            note, width, initial_indent=_INDENT, subsequent_indent=_INDENT, break_on_hyphens=False
        )
    return wrapped


# ---------------------------------------------------------------- a run


def entry_reason(entry: ImportEntry) -> str | None:
    """Why an entry failed or was skipped, or why some of its items failed."""
    if entry.error:
        return entry.error
    if entry.failures:
        first = entry.failures[0]
        more = f" (and {entry.failed - 1} more)" if entry.failed > 1 else ""
        return f"{first.get('external_id', '')}: {first.get('reason', '')}{more}"
    return None


def run_summary(run: ImportRun, width: int) -> str:
    """``import``'s closing summary: one row per feed, reasons under their rows, then the totals."""
    took = ""
    if run.finished_at:
        took = f", {(run.finished_at - run.started_at).total_seconds():.1f} s"
    title = f"Run {run.run_id} ({run.trigger.value}): {run.status.value}, {len(run.feeds)} feeds{took}"
    headers = ("feed", "status", "fetched", *COUNTS)
    rows = [_entry_row(entry) for entry in run.feeds]
    totals = [sum(getattr(e, k) for e in run.feeds) for k in ("total_fetched", *COUNTS)]
    rows.append(Row("total", ("", *map(str, totals))))
    return "\n".join([*textwrap.wrap(title, width), *render(headers, rows, width)])


def _entry_row(entry: ImportEntry) -> Row:
    reason = entry_reason(entry)
    cells = (entry.status.value, str(entry.total_fetched), *(str(getattr(entry, k)) for k in COUNTS))
    return Row(entry.name, cells, (reason,) if reason else ())


def progress(entries: Sequence[ImportEntry], width: int) -> str:
    """The live view while a run imports: each feed's status and counts so far."""
    headers = ("feed", "status", *COUNTS)
    rows = [Row(e.name, (e.status.value, *(str(getattr(e, k)) for k in COUNTS))) for e in entries]
    return "\n".join(["Importing…", *render(headers, rows, width)])


# ---------------------------------------------------------------- history


def history(runs: Sequence[ImportRun], width: int) -> str:
    """Past runs, newest first: when, how triggered, how it ended, and the summed counts."""
    if not runs:
        return "No import runs yet."
    headers = ("run", "started (UTC)", "trigger", "status", "feeds", "fetched", *COUNTS)
    rows = []
    for run in runs:
        sums = [sum(getattr(e, k) for e in run.feeds) for k in ("total_fetched", *COUNTS)]
        cells = (f"{run.started_at:%Y-%m-%d %H:%M}", run.trigger.value, run.status.value, str(len(run.feeds)))
        rows.append(Row(run.run_id, (*cells, *map(str, sums))))
    return "\n".join(["Import history", *render(headers, rows, width, words=3)])
