"""docker-compose.yml and deploy/*.Dockerfile agree with the code they deploy.

No Docker here: the files are parsed (PyYAML, a small Dockerfile reader) and checked against the
settings classes and the source tree. pydantic-settings ignores unknown BULKOPS_* variables
(extra="ignore"), so a misspelt name would otherwise deploy silently with the default value.
"""
from __future__ import annotations

import ast
import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import AliasChoices, AliasPath
from pydantic_settings import BaseSettings

from services.importer.settings import ImporterSettings
from services.ingest.settings import IngestSettings
from services.jobs.settings import JobsSettings
from shared.provision import JOB_TOPIC_PARTITIONS
from shared.settings import CommonSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"

# Compose services that run bulkops code, and the settings class each one reads.
SETTINGS_FOR_SERVICE: dict[str, type[BaseSettings]] = {
    "provision": CommonSettings,
    "ingest": IngestSettings,
    "importer": ImporterSettings,
    "jobs": JobsSettings,
}
APP_SERVICES = ("ingest", "importer", "jobs")
HTTP_SERVICES = ("ingest", "jobs")

# Fields whose defaults are fine on a laptop but wrong in a deployment (127.0.0.1, AWS itself, no
# secret): a deployment must set them. Provisioning verifies no tokens, so it needs no secret.
SERVER_FIELDS = ("kafka_bootstrap", "mongo_uri", "s3_endpoint", "dynamodb_endpoint")
REQUIRED_FIELDS = {"provision": SERVER_FIELDS, **{s: (*SERVER_FIELDS, "jwt_secret") for s in APP_SERVICES}}
SECRET_VARS = ("BULKOPS_JWT_SECRET", "AWS_SECRET_ACCESS_KEY")
FIRST_PARTY = ("shared", "services", "bulkops")


# ------------------------------------------------------------------------------------ readers


def load_compose() -> dict[str, Any]:
    assert COMPOSE_FILE.is_file(), f"{COMPOSE_FILE} is missing"
    return yaml.safe_load(COMPOSE_FILE.read_text())  # resolves anchors and `<<` merge keys


def service(name: str) -> dict[str, Any]:
    services = load_compose()["services"]
    assert name in services, f"docker-compose.yml has no `{name}` service"
    return services[name]


def environment(svc: dict[str, Any]) -> dict[str, str | None]:
    env = svc.get("environment") or {}
    if isinstance(env, list):  # ["NAME=value", "NAME"]
        return {k: v for k, _, v in (item.partition("=") for item in env)}
    return {str(k): (None if v is None else str(v)) for k, v in env.items()}


def field_env_names(settings_cls: type[BaseSettings], field: str) -> list[str]:
    """The variables a field is read from, preferred first: its alias(es), else prefix + name."""
    info = settings_cls.model_fields[field]
    alias = info.validation_alias or info.alias
    choices = alias.choices if isinstance(alias, AliasChoices) else [alias] if alias else []
    names = [c if isinstance(c, str) else c.path[0] for c in choices if isinstance(c, (str, AliasPath))]
    names = [n for n in names if isinstance(n, str)]
    return [n.upper() for n in names] or [(settings_cls.model_config.get("env_prefix", "") + field).upper()]


def env_name(settings_cls: type[BaseSettings], field: str) -> str:
    return field_env_names(settings_cls, field)[0]


def env_names(settings_cls: type[BaseSettings]) -> dict[str, str]:
    """Environment variable -> field, as pydantic-settings reads them (case-insensitively)."""
    return {name: f for f in settings_cls.model_fields for name in field_env_names(settings_cls, f)}


def dockerfile_path(svc: dict[str, Any]) -> Path:
    build = svc["build"]
    if isinstance(build, str):
        return ROOT / build / "Dockerfile"
    return (ROOT / build.get("context", ".")) / build.get("dockerfile", "Dockerfile")


def dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        pending = ""
    return instructions


def exec_form(args: str) -> list[str]:
    args = args.strip()
    return json.loads(args) if args.startswith("[") else ["/bin/sh", "-c", args]


def dockerfile_env(instructions: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in instructions:
        if keyword != "ENV":
            continue
        parts = shlex.split(args)
        if parts and "=" not in parts[0]:  # legacy `ENV NAME value`
            env[parts[0]] = " ".join(parts[1:])
        else:
            env.update(p.split("=", 1) for p in parts)
    return env


def last(instructions: list[tuple[str, str]], keyword: str) -> str | None:
    found = [args for k, args in instructions if k == keyword]
    return found[-1] if found else None


def argv_of(name: str) -> list[str]:
    """What the container runs: compose entrypoint/command over the Dockerfile's."""
    svc = service(name)
    instructions = dockerfile(dockerfile_path(svc))

    def compose_argv(value: str | list[str]) -> list[str]:
        return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]

    if "entrypoint" in svc:
        entrypoint = compose_argv(svc["entrypoint"])
    else:
        entrypoint = exec_form(last(instructions, "ENTRYPOINT") or "[]")
    if "command" in svc:
        command = compose_argv(svc["command"])
    else:
        command = exec_form(last(instructions, "CMD") or "[]")
    return entrypoint + command


def option(argv: list[str], flag: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def module_file(module: str, *, main: bool = False) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    candidates = [base.with_suffix(".py"), base / ("__main__.py" if main else "__init__.py")]
    return next((c for c in candidates if c.is_file()), None)


def top_level_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def entry_modules(argv: list[str]) -> list[str]:
    """The first-party modules a command starts, each checked to exist with what it needs."""
    assert argv, "no CMD/ENTRYPOINT and no compose command"
    args = argv[2:] if argv[:2] in (["python", "-m"], ["python3", "-m"]) and argv[2:3] == ["uvicorn"] else argv
    if args[0] == "uvicorn":
        targets = [a for a in args[1:] if ":" in a and not a.startswith("-")]
        assert len(targets) == 1, f"cannot find the `module:attribute` app in {argv}"
        module, _, attr = targets[0].partition(":")
        path = module_file(module)
        assert path is not None, f"{argv}: module {module} does not exist in the repository"
        assert attr in top_level_names(path), f"{argv}: {path.relative_to(ROOT)} defines no `{attr}`"
        return [module]
    if args[0] in ("python", "python3") and args[1:2] == ["-m"]:
        module = args[2]
        path = module_file(module, main=True)
        assert path is not None and (path.name != "__init__.py"), (
            f"{argv}: neither {module.replace('.', '/')}.py nor {module.replace('.', '/')}/__main__.py exists"
        )
        return [module]
    if args[0] in ("python", "python3") and args[1:2] == ["-c"]:
        tree = ast.parse(args[2])  # a SyntaxError fails the test
        modules = []
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in FIRST_PARTY:
                path = module_file(node.module)
                assert path is not None, f"{argv}: module {node.module} does not exist in the repository"
                missing = {a.name for a in node.names} - top_level_names(path)
                assert not missing, f"{argv}: {path.relative_to(ROOT)} defines no {sorted(missing)}"
                modules.append(node.module)
            elif isinstance(node, ast.Import):
                modules += [a.name for a in node.names if a.name.split(".")[0] in FIRST_PARTY]
        assert modules, f"{argv} runs no bulkops module"
        return modules
    raise AssertionError(f"unrecognised command {argv}: expected uvicorn, python -m or python -c")


def required_interpolation(value: str | None) -> bool:
    """`${NAME:?message}` (or `${NAME?message}`): compose refuses to start without it."""
    return bool(value and re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?\?[^}]*\}", value))


def interpolation_default(value: str) -> str:
    match = re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", value)
    return match.group(1) if match else value


# -------------------------------------------------------------------------------------- tests


def test_every_bulkops_service_is_known() -> None:
    """A new service running bulkops code needs an entry here, so its variables are checked too."""
    services = load_compose()["services"]
    ours = {n for n, s in services.items() if "build" in s or any(k.startswith("BULKOPS_") for k in environment(s))}
    assert ours == set(SETTINGS_FOR_SERVICE), (
        f"services running bulkops code: {sorted(ours)}; this test knows {sorted(SETTINGS_FOR_SERVICE)}"
    )


@pytest.mark.parametrize("name", SETTINGS_FOR_SERVICE)
def test_bulkops_variables_are_settings_fields(name: str) -> None:
    settings_cls = SETTINGS_FOR_SERVICE[name]
    known = env_names(settings_cls)
    set_in_compose = {k.upper() for k in environment(service(name)) if k.upper().startswith("BULKOPS_")}
    set_in_image = {k.upper() for k in dockerfile_env(dockerfile(dockerfile_path(service(name)))) if k.upper().startswith("BULKOPS_")}
    unknown_compose = sorted(set_in_compose - known.keys())
    unknown_image = sorted(set_in_image - known.keys())
    assert not unknown_compose, (
        f"docker-compose.yml sets {unknown_compose} for `{name}`, but {settings_cls.__name__} reads no such "
        f"variable (it would be ignored silently); it reads {sorted(known)}"
    )
    assert not unknown_image, (
        f"{dockerfile_path(service(name)).relative_to(ROOT)} sets {unknown_image}, but {settings_cls.__name__} "
        f"reads no such variable; it reads {sorted(known)}"
    )


@pytest.mark.parametrize("name", SETTINGS_FOR_SERVICE)
def test_production_settings_are_set(name: str) -> None:
    env = environment(service(name))
    for field in REQUIRED_FIELDS[name]:
        assert field in CommonSettings.model_fields, f"CommonSettings has no field `{field}` any more: update this test"
        names = field_env_names(CommonSettings, field)
        var = next((n for n in names if env.get(n)), names[0])
        assert env.get(var), (
            f"`{name}` does not set {var}: it would run with the default "
            f"{CommonSettings.model_fields[field].default!r}, which is not where a deployment's server is"
        )


@pytest.mark.parametrize("name", APP_SERVICES)
def test_secrets_are_required_not_literal(name: str) -> None:
    env = environment(service(name))
    for var in SECRET_VARS:
        assert required_interpolation(env.get(var)), (
            f"`{name}`: {var} is {env.get(var)!r}; use ${{NAME:?message}} so no secret lives in the file"
        )


@pytest.mark.parametrize("name", SETTINGS_FOR_SERVICE)
def test_image_builds_and_runs_bulkops(name: str) -> None:
    svc = service(name)
    assert "build" in svc, f"`{name}` has no build section"
    path = dockerfile_path(svc)
    assert path.is_file(), f"`{name}` builds from {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}, which does not exist"
    instructions = dockerfile(path)
    rel = path.relative_to(ROOT)

    copied = {
        sources[0].rstrip("/")
        for k, args in instructions
        if k == "COPY" and "--from" not in args and (sources := [a for a in shlex.split(args) if not a.startswith("--")])
    }
    for module in entry_modules(argv_of(name)):
        package = module.split(".")[0]
        assert package in copied, f"{rel} runs {module} but does not COPY {package}/ into the image"
    assert "pyproject.toml" in copied, f"{rel} does not COPY pyproject.toml"

    installs = [args for k, args in instructions if k == "RUN" and "pip install" in args]
    assert installs, f"{rel} does not pip install the project"
    assert not any("[stack" in args or "stack]" in args for args in installs), (
        f"{rel} installs the `stack` extra (embedded servers); production uses real servers"
    )
    user = last(instructions, "USER")
    assert user and user.split(":")[0] not in ("root", "0"), f"{rel} runs as root (USER {user})"


@pytest.mark.parametrize("name", HTTP_SERVICES)
def test_http_ports_agree(name: str) -> None:
    svc = service(name)
    argv = argv_of(name)
    image_env = dockerfile_env(dockerfile(dockerfile_path(svc)))
    env = {**image_env, **environment(svc)}
    host, port = option(argv, "--host"), option(argv, "--port")
    assert host == "0.0.0.0", f"`{name}` listens on {host!r}: unreachable from outside its container"
    assert port is not None, f"`{name}` runs {argv} without --port"
    for var, flag in (("BULKOPS_HOST", host), ("BULKOPS_PORT", port)):
        if var in env:
            assert env[var] == flag, f"`{name}`: {var}={env[var]} but uvicorn is started with {flag}"
    targets = {str(p).rsplit(":", 1)[-1].split("/")[0] for p in svc.get("ports", [])}
    assert targets == {port}, f"`{name}` publishes container port(s) {sorted(targets)} but listens on {port}"


def test_jobs_public_url_points_at_published_jobs_port() -> None:
    url = urlsplit(interpolation_default(environment(service("ingest"))["BULKOPS_JOBS_PUBLIC_URL"] or ""))
    published = {str(p).split(":")[-2] for p in service("jobs").get("ports", []) if str(p).count(":") >= 1}
    assert url.scheme in ("http", "https") and url.port is not None, f"BULKOPS_JOBS_PUBLIC_URL default {url.geturl()!r}"
    assert str(url.port) in published, (
        f"ingest tells clients to poll {url.geturl()}, but jobs is published on {sorted(published)}"
    )


def test_provision_runs_first_and_servers_are_healthy_before_it() -> None:
    services = load_compose()["services"]
    provision = services["provision"]
    assert dockerfile_path(provision) == dockerfile_path(services["importer"]), "provision should run in the importer image"
    assert "shared.provision" in entry_modules(argv_of("provision")), "provision does not run shared.provision"

    for name in APP_SERVICES:
        depends = services[name].get("depends_on") or {}
        assert isinstance(depends, dict) and "provision" in depends, f"`{name}` does not depend on provision"
        condition = depends["provision"].get("condition")
        assert condition == "service_completed_successfully", (
            f"`{name}` waits for provision with condition {condition!r}, not service_completed_successfully"
        )
    assert provision.get("restart", "no") == "no", "provision is a one-shot: restart must be 'no'"

    # Every server provisioning talks to is a compose service with a healthcheck it waits for.
    env = environment(provision)
    depends = provision.get("depends_on") or {}
    for field in SERVER_FIELDS:
        value = env[env_name(CommonSettings, field)] or ""
        host = urlsplit(value if "://" in value else f"tcp://{value.split(',')[0]}").hostname
        assert host in services, f"{env_name(CommonSettings, field)}={value}: no compose service is called {host!r}"
        assert services[host].get("healthcheck"), f"`{host}` has no healthcheck"
        assert isinstance(depends, dict) and depends.get(host, {}).get("condition") == "service_healthy", (
            f"provision does not wait for `{host}` to be healthy"
        )


def test_importer_replicas_fit_the_job_topic() -> None:
    importer = service("importer")
    replicas = (importer.get("deploy") or {}).get("replicas", importer.get("scale", 1))
    assert 2 <= replicas <= JOB_TOPIC_PARTITIONS, (
        f"{replicas} importers: want at least 2, and no more than the {JOB_TOPIC_PARTITIONS} partitions of import.requested"
    )
    assert "container_name" not in importer, "a fixed container_name prevents more than one importer replica"
