"""The ``jobimporter`` command: import once, show history, or run the long-lived service."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import signal
from collections.abc import Awaitable, Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from jobimporter.config import Settings
from jobimporter.deadletters import DeadLetters
from jobimporter.errors import ImporterError
from jobimporter.logs import setup_logging
from jobimporter.models import ImportRun
from jobimporter.oneshot import Interrupted, import_once, run_until_signalled
from jobimporter.report import Row, history, render, run_summary, terminal_width
from jobimporter.runtime import Runtime
from jobimporter.sources import load_sources

if TYPE_CHECKING:
    from jobimporter.api.server import ApiServer

# No Rich markup in help texts: "[[feeds]]" must print as it is.
app = typer.Typer(
    help="Keep a job board's database in step with external job feeds.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
log = logging.getLogger("jobimporter.cli")
T = TypeVar("T")

SourcesOption = Annotated[
    Path | None,
    typer.Option("--sources", help="TOML file of [[feeds]] (default: $JOBIMPORTER_SOURCES or built-in)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
HostOption = Annotated[
    str | None, typer.Option("--host", help="Admin API address (default: $JOBIMPORTER_HOST or 127.0.0.1).")
]
PortOption = Annotated[
    int | None,
    typer.Option("--port", min=0, max=65_535, help="Admin API port (default: $JOBIMPORTER_PORT or 8000)."),
]


def main() -> None:
    app()


def _settings(sources: Path | None, **overrides: object) -> Settings:
    """Settings from the environment, with the command line's options (those given) on top."""
    settings = Settings()
    update = {name: value for name, value in {"sources": sources, **overrides}.items() if value is not None}
    return settings.model_copy(update=update) if update else settings


def _setup_logging(settings: Settings, level: str | None = None) -> None:
    setup_logging(level or settings.log_level, settings.log_format)


def _fail(message: str) -> None:
    typer.echo(f"jobimporter: {message}", err=True)
    raise typer.Exit(code=1)


# ---------------------------------------------------------------- import


@app.command("import")
def import_command(sources: SourcesOption = None, as_json: JsonOption = False) -> None:
    """Import every enabled feed once, with live progress, then print the summary.

    Feeds still being imported by another run are imported once that run has finished. Ctrl-C (or
    SIGTERM) stops it without losing anything: the next import finishes the run it leaves.
    """
    settings = _settings(sources)
    # Quiet unless asked: the live view and the summary are the output; warnings still show.
    _setup_logging(settings, settings.log_level if "log_level" in settings.model_fields_set else "WARNING")
    state: dict[str, Any] = {}
    live = typer.get_text_stream("stderr").isatty() and not as_json
    try:
        run = run_until_signalled(import_once(settings, live=live, state=state), state)
    except Interrupted as exc:
        left = f"; run {exc.run_id} is left running: the next import finishes it" if exc.run_id else ""
        typer.echo(f"jobimporter: interrupted by {exc}{left}", err=True)
        raise typer.Exit(code=128 + exc.signum) from None
    except ImporterError as exc:
        _fail(str(exc))
        return
    if as_json:
        typer.echo(json.dumps(run_json(run), indent=2))
    else:
        typer.echo(run_summary(run, terminal_width()))


def run_json(run: ImportRun) -> dict[str, Any]:
    """The documented JSON shape of a run (``import --json``, ``history --json``)."""
    return run.model_dump(mode="json")


# ---------------------------------------------------------------- history


@app.command("history")
def history_command(
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="How many runs, newest first.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Show past import runs, newest first."""
    settings = Settings()
    _setup_logging(settings, "WARNING")
    try:
        runs = asyncio.run(_history(settings, limit))
    except ImporterError as exc:
        _fail(str(exc))
        return
    if as_json:
        typer.echo(json.dumps([run_json(r) for r in runs], indent=2))
        return
    typer.echo(history(runs, terminal_width()))


async def _history(settings: Settings, limit: int) -> list[ImportRun]:
    from jobimporter.store import create_store  # the store alone: no Redis needed to read history

    async with create_store(settings.resolved_database_url()) as store:
        return await store.list_runs(limit=limit)


# ---------------------------------------------------------------- run


class Api(Enum):
    """Whether ``_serve`` serves the admin API: not at all, if it can (``run``), or must (``api``)."""

    NO = "no"
    OPTIONAL = "optional"
    REQUIRED = "required"


@app.command("run")
def run_command(sources: SourcesOption = None, host: HostOption = None, port: PortOption = None) -> None:
    """The long-running service: workers, the cron schedule and the admin API, until SIGTERM or Ctrl-C."""
    _service(_settings(sources, host=host, port=port), workers=True, schedule=True, api=Api.OPTIONAL)


@app.command("api")
def api_command(sources: SourcesOption = None, host: HostOption = None, port: PortOption = None) -> None:
    """The admin API and dashboard only (no workers, no schedule): the runs it starts wait for workers."""
    _service(_settings(sources, host=host, port=port), workers=False, schedule=False, api=Api.REQUIRED)


@app.command("worker")
def worker_command() -> None:
    """Workers only: take feed and batch jobs from the queues until SIGTERM or Ctrl-C. Run any number."""
    _service(Settings(), workers=True, schedule=False)


@app.command("scheduler")
def scheduler_command(sources: SourcesOption = None) -> None:
    """The cron only: one import of all enabled feeds per slot, however many schedulers run."""
    _service(_settings(sources), workers=False, schedule=True)


def _service(settings: Settings, *, workers: bool, schedule: bool, api: Api = Api.NO) -> None:
    """Run a long-lived role until SIGTERM/Ctrl-C; a start-up failure is one line on stderr and exit 1."""
    _setup_logging(settings)
    try:
        asyncio.run(_serve(settings, workers=workers, schedule=schedule, api=api))
    except ImporterError as exc:
        _fail(str(exc))


async def _serve(settings: Settings, *, workers: bool = True, schedule: bool, api: Api = Api.NO) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Runtime(settings, workers=workers, schedule=schedule) as runtime:
        if schedule or api is not Api.NO:
            await _sync_sources(runtime, settings)
        if schedule:
            log.info("importing all enabled feeds on cron %r (UTC)", settings.cron)
        server = None if api is Api.NO else await _start_api(settings, runtime, required=api is Api.REQUIRED)
        log.info(
            "jobimporter %s: database %s, redis %s; Ctrl-C to stop",
            _role(workers=workers, schedule=schedule),
            _redact(settings.resolved_database_url()), _redact(runtime.redis_url),
        )  # fmt: skip
        await stop.wait()
        if server is not None:
            await server.stop()
        log.info("stopping: letting active jobs finish")
    log.info("stopped")


def _role(*, workers: bool, schedule: bool) -> str:
    if workers and schedule:
        return "running"
    if workers:
        return "worker running"
    return "scheduler running" if schedule else "API running"


async def _sync_sources(runtime: Runtime, settings: Settings) -> None:
    """A sources file given is synced; without one, the built-in feeds only seed an empty database, so
    feeds paused, re-prioritised or added through the API stay as they are across restarts."""
    store = runtime.ctx.store
    if settings.sources is not None or not await store.list_feeds():
        feeds = await store.sync_feeds(load_sources(settings.sources))
        log.info("feeds: %d synced from %s", len(feeds), settings.sources or "the built-in list")


async def _start_api(settings: Settings, runtime: Runtime, *, required: bool) -> ApiServer | None:
    """Serve the admin API beside the rest; ``run`` goes on without it when the port is taken."""
    from jobimporter.api import create_app  # only now: keeps FastAPI out of the other commands
    from jobimporter.api.server import ApiServer, bind

    try:
        server = ApiServer(create_app(settings, runtime), bind(settings.host, settings.port))
    except ImporterError as exc:
        if required:
            raise
        log.warning("%s; running without the admin API (set JOBIMPORTER_PORT or --port)", exc)
        return None
    await server.start()
    where = "on 127.0.0.1 only, the default" if settings.host == "127.0.0.1" else f"on {settings.host}"
    guard = "a bearer token" if settings.admin_token else "no token (set JOBIMPORTER_ADMIN_TOKEN)"
    log.info("admin API and dashboard at %s (listening %s; changes need %s)", server.url, where, guard)
    return server


def _redact(url: str) -> str:
    """Hide a password in a URL before logging it."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


# ---------------------------------------------------------------- dead letters

failed_app = typer.Typer(
    help="Dead letters: queue jobs that failed their last attempt.", no_args_is_help=True
)
app.add_typer(failed_app, name="failed")


@failed_app.command("list")
def failed_list(
    queue: Annotated[str | None, typer.Option("--queue", help="Only this queue's dead letters.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """List dead letters with their reason and attempts, newest first."""
    letters = _with_dead_letters(lambda dead: dead.letters(queue, limit=limit))
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(letter) for letter in letters], indent=2, default=str))
        return
    rows = []
    for letter in letters:
        failed_at = f"{letter.failed_at:%Y-%m-%d %H:%M}" if letter.failed_at else ""
        batch = str(letter.summary.batch_no) if letter.summary.batch_no is not None else ""
        feed = letter.summary.name or letter.summary.url or ""
        cells = (failed_at, feed, batch, str(letter.attempts))
        rows.append(Row(letter.id, cells, (letter.reason,) if letter.reason else ()))
    headers = ("dead letter", "failed at (UTC)", "feed", "batch", "attempts")
    lines = [f"Dead letters ({len(letters)})", *render(headers, rows, terminal_width(), words=2)]
    typer.echo("\n".join(lines))


@failed_app.command("retry")
def failed_retry(
    letter_id: Annotated[
        str | None, typer.Argument(help="`<queue>:<job id>` as `failed list` shows it.")
    ] = None,
    retry_all: Annotated[bool, typer.Option("--all", help="Retry every dead letter.")] = False,
) -> None:
    """Retry one dead letter (or all): its import entry is reopened and completes with exact counts."""
    if (letter_id is None) == (not retry_all):
        _fail("failed retry: give one dead letter id or --all")
    retried = _with_dead_letters(lambda dead: dead.retry_all() if retry_all else dead.retry(str(letter_id)))
    typer.echo(f"retried {retried}")


@failed_app.command("discard")
def failed_discard(letter_id: Annotated[str, typer.Argument(help="`<queue>:<job id>`.")]) -> None:
    """Remove one dead letter for good (its import entry keeps its failure)."""
    _with_dead_letters(lambda dead: dead.discard(letter_id))
    typer.echo(f"discarded {letter_id}")


def _with_dead_letters(action: Callable[[DeadLetters], Awaitable[T]]) -> T:
    settings = Settings()
    _setup_logging(settings, "WARNING")

    async def go() -> T:
        async with Runtime(settings, workers=False) as runtime:
            return await action(DeadLetters(runtime.ctx, runtime.redis_url))

    try:
        return asyncio.run(go())
    except ImporterError as exc:
        _fail(str(exc))
        raise AssertionError("unreachable") from exc


# ---------------------------------------------------------------- preview


@app.command("preview")
def preview_command(
    sources: SourcesOption = None,
    feed: Annotated[str | None, typer.Option("--feed", help="The feed's name (default: the first).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100, help="Records to show.")] = 5,
    as_json: JsonOption = False,
) -> None:
    """Fetch one feed and show what importing it would store; writes nothing."""
    from jobimporter.preview import preview_from_sources, render_text

    settings = _settings(sources)
    _setup_logging(settings, "WARNING")
    try:
        preview = asyncio.run(preview_from_sources(settings, feed, limit=limit))
    except ImporterError as exc:
        _fail(str(exc))
        raise AssertionError("unreachable") from exc
    typer.echo(preview.model_dump_json(indent=2) if as_json else render_text(preview), nl=as_json)


# ---------------------------------------------------------------- the change log


@app.command("changes")
def changes_command(
    after: Annotated[
        int | None, typer.Option("--after", min=0, help="Start after this cursor (default: the beginning).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Changes per page.")] = 100,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new changes as they come.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line on stdout.")] = False,
) -> None:
    """Print the change log: every job that was new, updated (and which fields), expired or reactivated,
    in order (times in UTC). With --follow it waits for more (Ctrl-C stops); resume later with
    --after <the last cursor printed>."""
    settings = Settings()
    _setup_logging(settings, "WARNING")
    main = _print_changes(settings, after or 0, limit=limit, follow=follow, as_json=as_json)
    try:  # its own SIGINT/SIGTERM handlers: they stop it even where it was started with SIGINT ignored
        run_until_signalled(main, {})
    except Interrupted as exc:
        raise typer.Exit(code=128 + exc.signum) from None
    except ImporterError as exc:
        _fail(str(exc))


async def _print_changes(settings: Settings, after: int, *, limit: int, follow: bool, as_json: bool) -> None:
    from jobimporter.changes import change_json, change_lines, pages, titles
    from jobimporter.changes import follow as follow_changes
    from jobimporter.store import create_store  # the store alone: the log is in the database

    async with create_store(settings.resolved_database_url()) as store:
        source = follow_changes(store, after, limit=limit) if follow else pages(store, after, limit=limit)
        width = terminal_width()
        async for page in source:
            if as_json:
                lines = [json.dumps(change_json(change)) for change in page]
            else:
                named = await titles(store, page)
                lines = [line for change in page for line in change_lines(change, named, width)]
            typer.echo("\n".join(lines))


if __name__ == "__main__":  # pragma: no cover
    main()
