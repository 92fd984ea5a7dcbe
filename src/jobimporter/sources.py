"""Which feeds to import: the built-in defaults (the original brief's nine) or a TOML sources file.

A sources file is an array of tables::

    [[feeds]]
    name = "Jobicy – all jobs"
    url = "https://jobicy.com/?feed=job_feed"
    format = "auto"        # auto | rss | atom | job-xml | greenhouse | ... (models.FeedFormat)
    enabled = true
    priority = "normal"    # normal | high
    cron = "0 */6 * * *"   # optional: its own schedule instead of JOBIMPORTER_CRON
    profile = "auto"       # board conventions: auto (by host) | none | a profile's name
    max_pages = 50         # paged APIs: pages read at most

    [feeds.mapping]        # optional: a field mapping instead of a known format (jobimporter.mapping)
    items = "//job"
    fields = { title = "title", link = "url" }

    [[webhooks]]           # optional: endpoints told what happened (jobimporter.webhooks)
    name = "Job board"
    url = "https://board.example/hooks/jobimporter"
    secret = "at least sixteen characters"
    events = ["jobs.changed", "run.failed", "feed.paused"]
    format = "json"        # json | slack (run and feed events only)
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import ValidationError

from jobimporter.errors import ConfigError
from jobimporter.models import FeedSource, WebhookFormat, WebhookSource
from jobimporter.parse import profiles

_JOBICY = "https://jobicy.com/?feed=job_feed"

DEFAULT_FEEDS: tuple[FeedSource, ...] = (
    FeedSource(name="Jobicy: all jobs", url=_JOBICY),
    FeedSource(name="Jobicy: SMM, full-time", url=f"{_JOBICY}&job_categories=smm&job_types=full-time"),
    FeedSource(
        name="Jobicy: seller, full-time, France",
        url=f"{_JOBICY}&job_categories=seller&job_types=full-time&search_region=france",
    ),
    FeedSource(name="Jobicy: design & multimedia", url=f"{_JOBICY}&job_categories=design-multimedia"),
    FeedSource(name="Jobicy: data science", url=f"{_JOBICY}&job_categories=data-science"),
    FeedSource(name="Jobicy: copywriting", url=f"{_JOBICY}&job_categories=copywriting"),
    FeedSource(name="Jobicy: business", url=f"{_JOBICY}&job_categories=business"),
    FeedSource(name="Jobicy: management", url=f"{_JOBICY}&job_categories=management"),
    FeedSource(name="HigherEdJobs: articles", url="https://www.higheredjobs.com/rss/articleFeed.cfm"),
)


def load_sources(path: Path | None) -> list[FeedSource]:
    """The feeds of ``path``, or the defaults when ``path`` is None. Raises ``ConfigError``."""
    if path is None:
        return list(DEFAULT_FEEDS)
    tables = _document(path).get("feeds")
    if not isinstance(tables, list) or not tables:
        raise ConfigError(f"sources: {path} has no [[feeds]] tables")
    feeds = [_feed_from_table(path, index, table) for index, table in enumerate(tables, start=1)]
    _reject_duplicate_urls(path, feeds)
    return feeds


def load_webhooks(path: Path) -> list[WebhookSource]:
    """The ``[[webhooks]]`` of ``path`` (none: an empty list). Raises ``ConfigError``. An endpoint of
    format ``json`` needs its ``secret`` here: the receiver verifies the signature with it."""
    tables = _document(path).get("webhooks", [])
    if not isinstance(tables, list):
        raise ConfigError(f"sources: {path}: webhooks must be an array of tables ([[webhooks]])")
    hooks = [_webhook_from_table(path, index, table) for index, table in enumerate(tables, start=1)]
    seen: set[str] = set()
    for hook in hooks:
        if hook.url in seen:
            raise ConfigError(f"sources: {path}: the webhook URL {hook.url} is listed twice")
        seen.add(hook.url)
    return hooks


def _document(path: Path) -> dict[str, object]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"sources: cannot read {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"sources: {path} is not valid TOML: {exc}") from exc


def _webhook_from_table(path: Path, index: int, table: object) -> WebhookSource:
    if not isinstance(table, dict):
        raise ConfigError(f"sources: {path}: webhook #{index} is not a table")
    where = f"webhook #{index}" + (f" ({table['name']!r})" if isinstance(table.get("name"), str) else "")
    try:
        hook = WebhookSource.model_validate(table)
    except ValidationError as exc:
        raise ConfigError(f"sources: {path}: {where}: {describe_errors(exc)}") from exc
    if hook.format is WebhookFormat.JSON and hook.secret is None:
        raise ConfigError(
            f"sources: {path}: {where}: secret: required for format 'json' (at least 16 characters; "
            "the receiver checks the signature with it)"
        )
    return hook


def publisher_host(url: str) -> str:
    """The host that scopes job identities: ``https://www.jobicy.com/x`` → ``jobicy.com``."""
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


def _feed_from_table(path: Path, index: int, table: object) -> FeedSource:
    if not isinstance(table, dict):
        raise ConfigError(f"sources: {path}: feed #{index} is not a table")
    where = f"feed #{index}" + (f" ({table['name']!r})" if isinstance(table.get("name"), str) else "")
    try:
        source = FeedSource.model_validate(table)
    except ValidationError as exc:
        raise ConfigError(f"sources: {path}: {where}: {describe_errors(exc)}") from exc
    if not profiles.known(source.profile):
        known = ", ".join(["auto", "none", *sorted(profiles.PROFILES)])
        raise ConfigError(
            f"sources: {path}: {where}: profile: unknown profile {source.profile!r} (known: {known})"
        )
    return source


def describe_errors(exc: ValidationError) -> str:
    """Pydantic's errors as ``field.path: problem; ...`` (a validator's own message without its
    "Value error, " prefix: it already names the field inside the mapping)."""
    problems = []
    for error in exc.errors():
        where = ".".join(
            str(part) for part in error["loc"] if not str(part).startswith(("function-", "FieldRule"))
        )
        message = str(error["msg"]).removeprefix("Value error, ")
        joint = "." if where and message.startswith(("fields", "items ")) else ": "
        problems.append(f"{where or 'feed'}{joint}{message}")
    return "; ".join(problems)


def _reject_duplicate_urls(path: Path, feeds: list[FeedSource]) -> None:
    seen: set[str] = set()
    for feed in feeds:
        if feed.url in seen:
            raise ConfigError(f"sources: {path}: the URL {feed.url} is listed twice")
        seen.add(feed.url)
