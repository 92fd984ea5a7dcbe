"""The Dockerfile and docker-compose.yml agree with the CLI and the settings.

No Docker engine runs here, so the files are checked as data: every service runs a real
`jobimporter` command, every environment variable is a setting the app reads, and the servers the
URLs name are services of the same file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from jobimporter.cli import app
from jobimporter.config import Settings

ROOT = Path(__file__).resolve().parent.parent
APP_SERVICES = ("api", "worker", "scheduler")


def known_env_names() -> set[str]:
    names = {"DATABASE_URL", "REDIS_URL"}
    names |= {
        f"JOBIMPORTER_{name.upper()}"
        for name in Settings.model_fields
        if name not in ("database_url", "redis_url")
    }
    return names


def cli_commands() -> set[str]:
    return {
        command.name or command.callback.__name__.removesuffix("_command")
        for command in app.registered_commands
    }  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def test_compose_has_the_production_topology(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"redis", "postgres", *APP_SERVICES}
    assert compose["services"]["worker"]["deploy"]["replicas"] >= 2
    assert compose["services"]["scheduler"]["deploy"]["replicas"] >= 2
    assert "--appendonly" in compose["services"]["redis"]["command"]
    assert "noeviction" in compose["services"]["redis"]["command"]


@pytest.mark.parametrize("service", APP_SERVICES)
def test_each_app_service_runs_a_real_command_with_known_settings(
    compose: dict[str, Any], service: str
) -> None:
    spec = compose["services"][service]
    command = spec["command"]
    assert command[0] == "jobimporter" and command[1] == service
    assert command[1] in cli_commands()
    env = spec["environment"]
    unknown = set(env) - known_env_names()
    assert not unknown, f"{service} sets variables the app never reads: {unknown}"
    assert urlsplit(env["REDIS_URL"]).hostname == "redis"
    database = urlsplit(env["DATABASE_URL"])
    postgres = compose["services"]["postgres"]["environment"]
    assert (database.hostname, database.username, database.password, database.path.strip("/")) == (
        "postgres", postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"],
    )  # fmt: skip
    assert set(spec["depends_on"]) == {"redis", "postgres"}
    for name, value in env.items():
        if name.startswith("JOBIMPORTER_") and not str(value).startswith("${"):
            Settings.model_validate({name.removeprefix("JOBIMPORTER_").lower(): value})  # a valid value


def test_the_api_listens_on_all_interfaces_inside_its_container(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]
    assert api["environment"]["JOBIMPORTER_HOST"] == "0.0.0.0"
    assert any(str(port).endswith(":" + str(api["environment"]["JOBIMPORTER_PORT"])) for port in api["ports"])
    assert "JOBIMPORTER_ADMIN_TOKEN" in api["environment"]  # an exposed API never runs without a token


def test_dockerfile_installs_the_package_and_runs_the_cli() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^COPY src \./src$", text, re.MULTILINE) and "pip install ." in text
    assert 'CMD ["jobimporter", "run"]' in text
    for name in re.findall(r"\b(JOBIMPORTER_[A-Z_]+)=", text):
        assert name in known_env_names()
