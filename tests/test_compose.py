"""temporal-dev.yml, the Docker Compose description of the stack at scale, checked without Docker.

The file is read as YAML and held to what the rest of the project expects: the variables
config.py reads, the search attributes domain/search_attributes.py declares, the packages
pyproject.toml installs. The temporal-init script runs for real against a stand-in `temporal`.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from config import Settings
from domain import search_attributes

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "temporal-dev.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

SERVICES = {"postgres", "temporal", "temporal-init", "temporal-ui", "api", "worker"}
SEARCH_ATTRIBUTES = {
    "ParleyStage": "Keyword",
    "ParleyMediator": "Keyword",
    "ParleyCampaign": "Keyword",
    "ParleyDeadline": "Datetime",
    "ParleyAmount": "Int",
    "ParleyOverdue": "Bool",
}
APP_ENVIRONMENT = {
    "PARLEY_TEMPORAL_ADDRESS": "temporal:7233",
    "PARLEY_DATABASE_URL": "postgresql+psycopg://parley:parley@postgres:5432/parley",
    "PARLEY_ADMIN_TOKEN": "change-me",
    "PARLEY_PAYMENTS": "sandbox",
    "PARLEY_DATA_DIR": "/data",
}
PASSED_THROUGH = ("STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET")
UI_PORT = 8233
UI_CONTAINER_PORT = 8080  # temporalio/ui listens here unless TEMPORAL_UI_PORT says otherwise
VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


def interpolate(value: Any) -> str:
    """A value as Compose resolves it when none of its ${NAME:-default} variables is set."""
    return VARIABLE.sub(lambda m: m.group(2) or "", str(value))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict[str, Any]]:
    return compose["services"]


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    """A service's environment in either Compose syntax; None marks a passed-through name."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(
            (item.split("=", 1)[0], item.split("=", 1)[1]) if "=" in item else (item, None)
            for item in env
        )
    return {name: None if value is None else interpolate(value) for name, value in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def command_text(value: Any) -> str:
    return value if isinstance(value, str) else " ".join(value)


def published_ports(service: dict[str, Any]) -> dict[int, int]:
    """host port -> container port, for the short "HOST:CONTAINER" syntax."""
    ports = {}
    for entry in service.get("ports", []):
        host, _, container = interpolate(entry).rpartition(":")
        ports[int(host)] = int(container)
    return ports


def image_tag(image: str) -> str:
    name = image.rsplit("/", 1)[-1]
    return name.partition(":")[2]


def test_the_stack_has_every_service(services):
    assert SERVICES <= services.keys()


def test_every_image_is_pinned_to_a_version(services):
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        if "image" not in service:
            continue
        tag = image_tag(service["image"])
        assert tag and tag != "latest", f"{name}: {service['image']} has no pinned tag"
        assert re.match(r"\d+\.\d+", tag), f"{name}: {service['image']} is not a version"


def test_temporal_images_share_one_server_version(services):
    server = image_tag(services["temporal"]["image"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", server)
    # admin-tools is published as SERVER-tctl-X-cli-Y (and SERVER's minor); never as SERVER.
    assert image_tag(services["temporal-init"]["image"]).startswith(f"{server}-tctl-")


def test_built_image_is_tagged_with_the_project_version(services):
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name in ("api", "worker"):
        assert services[name]["build"]["context"] == "."
        assert services[name]["build"].get("dockerfile", "Dockerfile") == DOCKERFILE.name
        assert services[name]["image"] == f"parley:{version}", name


def test_search_attributes_match_the_domain():
    kinds = {"KEYWORD": "Keyword", "DATETIME": "Datetime", "INT": "Int", "BOOL": "Bool"}
    declared = {key.name: kinds[key.indexed_value_type.name] for key in search_attributes.ALL}
    assert declared == SEARCH_ATTRIBUTES


def test_temporal_runs_on_postgres(services):
    postgres, temporal = services["postgres"], services["temporal"]
    assert postgres["image"].startswith("postgres:")
    env, pg_env = environment(temporal), environment(postgres)
    assert temporal["image"].startswith("temporalio/auto-setup:")
    assert env["DB"] == "postgres12"
    assert env["POSTGRES_SEEDS"] == "postgres"
    assert env["POSTGRES_USER"] == pg_env["POSTGRES_USER"] == "temporal"
    assert env["POSTGRES_PWD"] == pg_env["POSTGRES_PASSWORD"]
    assert depends_on(temporal) == {"postgres": "service_healthy"}


def test_postgres_also_creates_the_app_database(compose, services):
    url = make_url(APP_ENVIRONMENT["PARLEY_DATABASE_URL"])
    mounted = {
        entry["target"]: compose["configs"][entry["source"]]
        for entry in services["postgres"]["configs"]
    }
    scripts = [
        config["content"]
        for target, config in mounted.items()
        if target.startswith("/docker-entrypoint-initdb.d/") and target.endswith(".sql")
    ]
    assert scripts, "no init SQL mounted into /docker-entrypoint-initdb.d"
    sql = " ".join(" ".join(scripts).split())
    assert f"CREATE ROLE {url.username} WITH LOGIN PASSWORD '{url.password}'" in sql
    assert f"CREATE DATABASE {url.database} OWNER {url.username}" in sql
    assert (url.host, url.port) == ("postgres", 5432)


def test_postgres_and_api_have_healthchecks(services):
    postgres = command_text(services["postgres"]["healthcheck"]["test"])
    assert "pg_isready" in postgres
    api = command_text(services["api"]["healthcheck"]["test"])
    assert "urllib.request" in api and "http://127.0.0.1:8000/readyz" in api


def test_dependencies_wait_for_what_they_need(services):
    for name, service in services.items():
        for target, condition in depends_on(service).items():
            assert target in services, f"{name} depends on unknown {target}"
            assert condition in CONDITIONS, f"{name} -> {target}: {condition}"
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"
    api = depends_on(services["api"])
    assert api["postgres"] == "service_healthy"
    assert api["temporal"] == "service_healthy"
    assert api["temporal-init"] == "service_completed_successfully"
    worker = depends_on(services["worker"])
    assert worker["temporal-init"] == "service_completed_successfully"
    assert worker["api"] == "service_healthy", "the worker needs the API's migrations"


def test_api_and_worker_use_the_app_variables(compose, services):
    settings = Settings.model_fields
    volumes = compose.get("volumes") or {}
    for name in ("api", "worker"):
        env = environment(services[name])
        for variable, value in APP_ENVIRONMENT.items():
            assert env.get(variable) == value, f"{name}: {variable}"
            assert variable.removeprefix("PARLEY_").lower() in settings, variable
        for variable in PASSED_THROUGH:
            assert variable in env and env[variable] in (None, ""), f"{name}: {variable}"
        mounts = dict(
            entry.rsplit(":", 1) for entry in services[name]["volumes"] if isinstance(entry, str)
        )
        assert mounts.get("parley-data") == APP_ENVIRONMENT["PARLEY_DATA_DIR"], name
    assert "parley-data" in volumes


def test_api_migrates_then_serves_and_workers_scale_out(services):
    api = command_text(services["api"]["command"])
    migrate, serve = api.find("python -m db.migrate"), api.find("uvicorn api.main:create_app")
    assert 0 <= migrate < serve, api
    assert "&&" in api[migrate:serve], "uvicorn must not start when the migrations fail"
    assert "--factory --host 0.0.0.0 --port 8000" in api
    assert published_ports(services["api"])[8000] == 8000

    worker = services["worker"]
    assert command_text(worker["command"]) == "python worker.py"
    assert worker["deploy"]["replicas"] == 2
    assert "container_name" not in worker and "ports" not in worker, "replicas would clash"


def test_ui_is_on_port_8233(services):
    ui = services["temporal-ui"]
    assert ui["image"].startswith("temporalio/ui:")
    assert published_ports(ui) == {UI_PORT: UI_CONTAINER_PORT}
    env = environment(ui)
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["TEMPORAL_CORS_ORIGINS"] == f"http://localhost:{UI_PORT}"
    assert depends_on(ui) == {"temporal": "service_healthy"}


UI_ACTIONS_MEDIATORS_MUST_NOT_HAVE = (
    "TEMPORAL_WORKFLOW_TERMINATE_DISABLED",
    "TEMPORAL_WORKFLOW_CANCEL_DISABLED",
    "TEMPORAL_WORKFLOW_SIGNAL_DISABLED",
    "TEMPORAL_WORKFLOW_RESET_DISABLED",
    "TEMPORAL_START_WORKFLOW_DISABLED",
    "TEMPORAL_BATCH_ACTIONS_DISABLED",
)


def test_ui_is_the_mediators_console_behind_oidc(services):
    """Issue #12: sign-in through OIDC, whose client comes from the environment (never a
    secret in the file), and no terminate/cancel/signal/reset/start/batch — but Updates on."""
    ui = services["temporal-ui"]
    raw, env = ui["environment"], environment(ui)
    assert env["TEMPORAL_AUTH_ENABLED"] == "true" and env["TEMPORAL_AUTH_TYPE"] == "oidc"
    assert env["TEMPORAL_AUTH_PROVIDER_URL"].startswith("https://")
    assert env["TEMPORAL_AUTH_CALLBACK_URL"].endswith("/auth/sso/callback")
    assert "openid" in env["TEMPORAL_AUTH_SCOPES"].split(",")
    for name in ("TEMPORAL_AUTH_CLIENT_ID", "TEMPORAL_AUTH_CLIENT_SECRET"):
        assert re.fullmatch(r"\$\{PARLEY_UI_OIDC_\w+:-\}", raw[name]), (name, raw[name])
        assert env[name] == "", "no credential in the file"
    for name in UI_ACTIONS_MEDIATORS_MUST_NOT_HAVE:
        assert env.get(name) == "true", name
    # The all-or-nothing switch would also take away Updates, the mediators' only action.
    assert env.get("TEMPORAL_DISABLE_WRITE_ACTIONS", "false") == "false"


# --- temporal-init: the mounted script, run against a stand-in `temporal` -------------------

FAKE_TEMPORAL = """\
#!/bin/sh
echo "$*" >> "$FAKE_LOG"
case "$*" in
    *"cluster health"*) [ -z "${FAKE_DOWN:-}" ] || exit 1 ;;
    *"search-attribute create"*"--name ${FAKE_FAIL_NAME:-none} "*)
        echo "$FAKE_FAIL_MESSAGE" >&2
        exit 1 ;;
esac
exit 0
"""


def init_script(compose: dict[str, Any], service: dict[str, Any]) -> Path:
    """The file the temporal-init entrypoint runs, through the config that mounts it."""
    entrypoint = command_text(service["entrypoint"])
    for entry in service.get("configs", []):
        if entry["target"] in entrypoint:
            return ROOT / compose["configs"][entry["source"]]["file"]
    raise AssertionError(f"temporal-init runs nothing mounted: {entrypoint}")


def run_init(compose, services, tmp_path: Path, **fake: str) -> tuple[int, str, list[list[str]]]:
    service = services["temporal-init"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake_temporal = bin_dir / "temporal"
    fake_temporal.write_text(FAKE_TEMPORAL)
    fake_temporal.chmod(0o755)
    log = tmp_path / "temporal.log"
    log.write_text("")
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "FAKE_LOG": str(log),
        "TEMPORAL_INIT_TIMEOUT": "0",
        **{k: v for k, v in environment(service).items() if v is not None},
        **fake,
    }
    script = init_script(compose, service)
    done = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=30)
    calls = [shlex.split(line) for line in log.read_text().splitlines()]
    return done.returncode, done.stdout + done.stderr, calls


def created(calls: list[list[str]]) -> list[dict[str, str]]:
    return [
        dict(zip(call[3::2], call[4::2], strict=True))
        for call in calls
        if call[:3] == ["operator", "search-attribute", "create"]
    ]


def test_init_registers_the_five_search_attributes(compose, services, tmp_path):
    assert services["temporal-init"]["image"].startswith("temporalio/admin-tools:")
    assert depends_on(services["temporal-init"]) == {"temporal": "service_healthy"}
    code, output, calls = run_init(compose, services, tmp_path)
    assert code == 0, output
    creates = created(calls)
    assert {c["--name"]: c["--type"] for c in creates} == SEARCH_ATTRIBUTES
    assert len(creates) == len(SEARCH_ATTRIBUTES)
    for call in creates:
        assert call["--address"] == "temporal:7233"
        assert call["--namespace"] == "default"
    waits = [" ".join(call[:3]) for call in calls[:3]]
    assert waits == [
        "operator cluster health",
        "operator namespace describe",
        "operator search-attribute list",
    ], "register only once the server and the namespace answer"


def test_init_tolerates_an_attribute_that_already_exists(compose, services, tmp_path):
    code, output, calls = run_init(
        compose,
        services,
        tmp_path,
        FAKE_FAIL_NAME="ParleyStage",
        FAKE_FAIL_MESSAGE="Error: unable to add search attributes: "
        "Search attribute ParleyStage already exists.",
    )
    assert code == 0, output
    assert len(created(calls)) == len(SEARCH_ATTRIBUTES)


def test_init_fails_on_an_attribute_of_another_type(compose, services, tmp_path):
    code, output, _ = run_init(
        compose,
        services,
        tmp_path,
        FAKE_FAIL_NAME="ParleyAmount",
        FAKE_FAIL_MESSAGE="Error: search attribute ParleyAmount already exists "
        "and has different type Keyword",
    )
    assert code != 0
    assert "different type" in output


def test_init_gives_up_when_temporal_never_answers(compose, services, tmp_path):
    code, output, calls = run_init(compose, services, tmp_path, FAKE_DOWN="1")
    assert code != 0
    assert "gave up" in output
    assert not created(calls)


# --- Dockerfile ------------------------------------------------------------------------------


def test_dockerfile_installs_the_project():
    assert DOCKERFILE.is_file()
    text = DOCKERFILE.read_text()
    base = re.search(r"^FROM\s+(\S+)", text, re.MULTILINE)
    assert base and base.group(1) == "python:3.11-slim"
    assert re.search(r"^RUN\s+pip install \.(\s|$)", text, re.MULTILINE), "pip install ."

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = pyproject["tool"]["setuptools"]
    needed = [f"{module}.py" for module in setuptools["py-modules"]]
    needed += [pattern.rstrip("*") for pattern in setuptools["packages"]["find"]["include"]]
    needed += ["pyproject.toml", pyproject["project"]["readme"]]
    copied = {
        source.rstrip("/")
        for line in re.findall(r"^COPY\s+(.+)$", text, re.MULTILINE)
        for source in line.split()[:-1]
        if not source.startswith("--")
    }
    assert set(needed) <= copied, f"not copied into the image: {set(needed) - copied}"

    ignored = {line.strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines()}
    ignored.discard("")
    assert {".data", ".venv", ".git"} <= ignored, "local state must stay out of the image"
    assert not ignored & set(needed), "the build context must keep what the image copies"
