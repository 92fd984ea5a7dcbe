"""Sources files, the built-in feeds, and settings (env vars, .env, the README's table)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jobimporter.config import Settings
from jobimporter.errors import ConfigError
from jobimporter.models import FeedFormat, Priority
from jobimporter.sources import DEFAULT_FEEDS, load_sources, publisher_host

README = Path(__file__).resolve().parent.parent / "README.md"
BRIEF_FEEDS = [
    "https://jobicy.com/?feed=job_feed",
    "https://jobicy.com/?feed=job_feed&job_categories=smm&job_types=full-time",
    "https://jobicy.com/?feed=job_feed&job_categories=seller&job_types=full-time&search_region=france",
    "https://jobicy.com/?feed=job_feed&job_categories=design-multimedia",
    "https://jobicy.com/?feed=job_feed&job_categories=data-science",
    "https://jobicy.com/?feed=job_feed&job_categories=copywriting",
    "https://jobicy.com/?feed=job_feed&job_categories=business",
    "https://jobicy.com/?feed=job_feed&job_categories=management",
    "https://www.higheredjobs.com/rss/articleFeed.cfm",
]


def test_the_built_in_feeds_are_the_nine_of_the_brief() -> None:
    assert [f.url for f in load_sources(None)] == BRIEF_FEEDS
    assert all(f.enabled and f.priority is Priority.NORMAL for f in DEFAULT_FEEDS)


def test_a_sources_file_with_every_option(tmp_path: Path) -> None:
    path = tmp_path / "feeds.toml"
    path.write_text(
        '[[feeds]]\nname = "A"\nurl = "https://a.example/feed"\n\n'
        '[[feeds]]\nname = "B"\nurl = "https://b.example/api"\nformat = "jobicy-json"\nenabled = false\n'
        'priority = "high"\ncron = "0 */6 * * *"\n',
        encoding="utf-8",
    )
    a, b = load_sources(path)
    assert (a.format, a.enabled, a.priority, a.cron) == (FeedFormat.AUTO, True, Priority.NORMAL, None)
    assert (b.format, b.enabled, b.priority, b.cron) == (
        FeedFormat.JOBICY_JSON,
        False,
        Priority.HIGH,
        "0 */6 * * *",
    )


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("not toml [", "not valid TOML"),
        ('title = "no feeds"', "no [[feeds]]"),
        ('[[feeds]]\nname = "x"\nurl = "ftp://x"', "url"),
        ('[[feeds]]\nname = "x"\nurl = "https://x"\nformat = "csv"', "format"),
        ('[[feeds]]\nname = "x"\nurl = "https://x"\ncolour = "red"', "colour"),
        (
            '[[feeds]]\nname = "x"\nurl = "https://x"\ncron = "hourly"',
            "feed #1 ('x'): cron: not a cron",
        ),
        (
            '[[feeds]]\nname = "x"\nurl = "https://x"\n[[feeds]]\nname = "y"\nurl = "https://x"',
            "listed twice",
        ),
    ],
)
def test_a_bad_sources_file_is_a_config_error_naming_the_problem(
    tmp_path: Path, text: str, needle: str
) -> None:
    path = tmp_path / "feeds.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(needle)):
        load_sources(path)


def test_a_missing_sources_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_sources(tmp_path / "nope.toml")


def test_publisher_host_scopes_identity_by_host_without_www() -> None:
    assert publisher_host("https://www.JOBICY.com/?feed=job_feed") == "jobicy.com"
    assert publisher_host("https://jobicy.com/x") == "jobicy.com"


def test_settings_read_prefixed_env_vars_the_two_urls_and_dotenv(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("JOBIMPORTER_CONCURRENCY=9\n", encoding="utf-8")
    monkeypatch.setenv("JOBIMPORTER_BATCH_SIZE", "250")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db/jobs")
    monkeypatch.setenv("REDIS_URL", "redis://cache:6379/0")
    settings = Settings()
    assert (settings.batch_size, settings.concurrency) == (250, 9)
    assert settings.resolved_database_url() == "postgresql://u:p@db/jobs"
    assert settings.redis_url == "redis://cache:6379/0"


def test_defaults_are_the_documented_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = Settings()
    assert (s.batch_size, s.concurrency, s.attempts, s.cron, s.max_feed_bytes) == (
        100,
        5,
        3,
        "0 * * * *",
        50 * 2**20,
    )
    assert s.redis_url is None and s.resolved_database_url().startswith("sqlite:///")


def test_every_setting_is_in_the_readme_table() -> None:
    table = README.read_text(encoding="utf-8")
    for name, field in Settings.model_fields.items():
        env = {"database_url": "DATABASE_URL", "redis_url": "REDIS_URL"}.get(
            name, f"JOBIMPORTER_{name.upper()}"
        )
        assert f"| `{env}` |" in table, f"README's configuration table lacks {env} ({field.description})"
