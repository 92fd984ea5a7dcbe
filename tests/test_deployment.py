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


class Override(dict[str, Any]):
    """A mapping tagged ``!override``: it replaces the base file's value instead of merging into it."""


class ComposeLoader(yaml.SafeLoader):
    pass


ComposeLoader.add_constructor(
    "!override",
    lambda loader, node: Override(loader.construct_mapping(node, deep=True)),  # type: ignore[arg-type]
)


def merged(base: Any, override: Any) -> Any:
    """Compose's merge of an override file, for the keys these files use: mappings merge key by key,
    an ``!override`` mapping and any other value replace."""
    if isinstance(override, Override) or not (isinstance(base, dict) and isinstance(override, dict)):
        return dict(override) if isinstance(override, Override) else override
    return {key: merged(base[key], value) if key in base else value for key, value in override.items()} | {
        key: value for key, value in base.items() if key not in override
    }


@pytest.fixture(scope="module")
def mongo_compose(compose: dict[str, Any]) -> dict[str, Any]:
    text = (ROOT / "docker-compose.mongodb.yml").read_text(encoding="utf-8")
    document = yaml.load(text, Loader=ComposeLoader)  # SafeLoader plus the one tag
    result: dict[str, Any] = merged(compose, document)
    return result


def test_the_mongodb_variant_swaps_postgres_for_a_one_node_replica_set(mongo_compose: dict[str, Any]) -> None:
    services = mongo_compose["services"]
    started = {name for name, spec in services.items() if not spec.get("profiles")}
    assert started == {"redis", "mongo", *APP_SERVICES}
    mongod = services["mongo"]["command"]
    assert mongod[:2] == ["mongod", "--replSet"] and "--bind_ip_all" in mongod
    replica_set = mongod[2]
    probe = " ".join(services["mongo"]["healthcheck"]["test"])
    assert f'_id: "{replica_set}"' in probe and 'host: "mongo:27017"' in probe  # initiates that set
    assert "isWritablePrimary" in probe
    for service in APP_SERVICES:
        spec = services[service]
        url = urlsplit(spec["environment"]["DATABASE_URL"])
        assert (url.scheme, url.hostname, url.port, url.path) == ("mongodb", "mongo", 27017, "/jobimporter")
        assert f"replicaSet={replica_set}" in url.query
        assert set(spec["depends_on"]) == {"redis", "mongo"}
        assert spec["command"][:2] == ["jobimporter", service]  # the base file's service, kept
        assert spec["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert not set(spec["environment"]) - known_env_names()


def test_the_mongodb_variants_url_reaches_the_mongodb_store(mongo_compose: dict[str, Any]) -> None:
    from jobimporter.store import create_store
    from jobimporter.store.mongo import MongoStore

    url = mongo_compose["services"]["worker"]["environment"]["DATABASE_URL"]
    assert isinstance(create_store(url), MongoStore)
