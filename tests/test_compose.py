"""docker-compose.yml, the Dockerfile and .env.example stay honest about the code they run.

No Docker engine runs here, so each service's code path is exercised directly: the environment compose gives
web, worker and beat (with the Dockerfile's ENV under it) is loaded by portal/settings.py in a subprocess, with
the service hosts swapped for the PostgreSQL and Redis on 127.0.0.1; the services' own commands and
healthchecks are run as compose writes them. Qdrant and vLLM cannot run here: small HTTP stand-ins answer
their healthchecks and the portal's health view.
"""

from __future__ import annotations

import contextlib
import fnmatch
import http.server
import json
import os
import random
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import yaml  # PyYAML: not a dependency of ours, but huggingface-hub's (through sentence-transformers)

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
OUR_SERVICES = ("web", "worker", "beat")
LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
# Read by Python, pip or Hugging Face rather than by portal/settings.py.
RUNTIME_VARIABLES = {
    "PYTHONUNBUFFERED",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONPATH",
    "DJANGO_SETTINGS_MODULE",
    "PIP_NO_CACHE_DIR",
    "PIP_DISABLE_PIP_VERSION_CHECK",
    "HF_HUB_OFFLINE",
}


# --- Reading the files ------------------------------------------------------------------------------------


class MissingVariable(Exception):
    """Compose would refuse to start: a ${NAME:?message} variable is unset or empty."""


_INTERPOLATION = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\})")


def interpolate(value, values: dict[str, str]):
    """Compose's variable substitution: ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, $$."""
    if isinstance(value, dict):
        return {key: interpolate(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, values) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.groups()
        current = values.get(name)
        if operator is None:
            return current or ""
        missing = current is None or (operator.startswith(":") and current == "")
        if operator.endswith("-"):
            return argument if missing else current
        if missing:
            raise MissingVariable(f"{name}: {argument}")
        return current

    return _INTERPOLATION.sub(substitute, value)


def compose_text() -> str:
    return (REPO / "docker-compose.yml").read_text()


def compose_raw() -> dict:
    return yaml.safe_load(compose_text())


def env_example() -> dict[str, str]:
    values = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


OPERATOR_SECRETS = {"SECRET_KEY": secrets.token_urlsafe(50), "POSTGRES_PASSWORD": secrets.token_hex(24)}


def filled_env() -> dict[str, str]:
    """.env.example as an operator fills it in, as .env.example tells them to."""
    return env_example() | OPERATOR_SECRETS


def compose(values: dict[str, str] | None = None) -> dict:
    return interpolate(compose_raw(), filled_env() if values is None else values)


def service(name: str, values: dict[str, str] | None = None) -> dict:
    return compose(values)["services"][name]


def service_env(name: str, values: dict[str, str] | None = None) -> dict[str, str]:
    environment = service(name, values).get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: str(value) for key, value in environment.items()}


def service_command(name: str) -> list[str]:
    command = service(name)["command"]
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def settings_variables() -> set[str]:
    """Every environment variable portal/settings.py reads by name."""
    source = (REPO / "portal" / "settings.py").read_text()
    patterns = (
        r"\benv_(?:str|bool|int|float|list)\(\s*[\"']([A-Z][A-Z0-9_]*)[\"']",
        r"os\.(?:environ\.get|getenv)\(\s*[\"']([A-Z][A-Z0-9_]*)[\"']",
        r"os\.environ\[\s*[\"']([A-Z][A-Z0-9_]*)[\"']\s*\]",
    )
    return {name for pattern in patterns for name in re.findall(pattern, source)}


def dockerfile_instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    instructions = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def dockerfile_env() -> dict[str, str]:
    env = {}
    for keyword, rest in dockerfile_instructions():
        if keyword == "ENV":
            env.update(token.split("=", 1) for token in shlex.split(rest))
    return env


def dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def dockerignored(path: str) -> bool:
    parts = Path(path).parts
    candidates = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    for pattern in dockerignore_patterns():
        if pattern.startswith("!"):
            continue
        for candidate in candidates:
            if fnmatch.fnmatch(candidate, pattern.lstrip("/")):
                return True
            if pattern.startswith("**/") and fnmatch.fnmatch(Path(candidate).name, pattern[3:]):
                return True
    return False


# --- Running the services' code paths here ------------------------------------------------------------------


def localize_path(value: str, tmp_path: Path) -> str:
    """Container paths to local ones: the code in /app is this checkout; what it writes goes to tmp_path."""
    if value == "/app":
        return str(REPO)
    for root in ("/app/", "/data"):
        if value == root.rstrip("/") or value.startswith(root.rstrip("/") + "/"):
            return str(tmp_path / value.lstrip("/"))
    return value


def localize_services(env: dict[str, str], *, database: str, redis_db: int, qdrant_url: str) -> dict[str, str]:
    """Point compose's service URLs at what runs on this machine, keeping their shape."""
    db = urlsplit(env["DATABASE_URL"])
    assert db.hostname == "postgres", env["DATABASE_URL"]
    assert urlsplit(env["REDIS_URL"]).hostname == "redis", env["REDIS_URL"]
    assert urlsplit(env["QDRANT_URL"]).hostname == "qdrant", env["QDRANT_URL"]
    return env | {
        "DATABASE_URL": urlunsplit((db.scheme, f"postgres:{db.password}@127.0.0.1:5432", f"/{database}", "", "")),
        "REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}",
        "QDRANT_URL": qdrant_url,
        "LLM_BASE_URL": "http://127.0.0.1:9/v1",  # nothing listens: the LLM is never called here
    }


def container_env(
    name: str, tmp_path: Path, *, database: str = "test", redis_db: int = 0, qdrant_url: str = "http://127.0.0.1:9"
) -> dict[str, str]:
    """The environment the service's container runs with (Dockerfile ENV, then compose's), made local."""
    env = {key: localize_path(value, tmp_path) for key, value in dockerfile_env().items()}
    env |= {key: localize_path(value, tmp_path) for key, value in service_env(name).items()}
    env = localize_services(env, database=database, redis_db=redis_db, qdrant_url=qdrant_url)
    (tmp_path / "home").mkdir(exist_ok=True)
    return env | {
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path / "home"),
        "LANG": "C.UTF-8",
        "HOSTNAME": socket.gethostname(),  # Docker sets it to the container's host name
    }


def run(argv: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def python_json(code: str, env: dict[str, str]) -> dict:
    result = run([sys.executable, "-c", code], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def healthcheck_argv(name: str, replace: dict[str, str] | None = None) -> list[str]:
    test = service(name)["healthcheck"]["test"]
    argv = test[1:] if test[0] == "CMD" else ["sh", "-c", test[1]]
    for old, new in (replace or {}).items():
        argv = [arg.replace(old, new) for arg in argv]
    return argv


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


@contextlib.contextmanager
def running(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    with log.open("w") as out:
        process = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StubServer:
    """An HTTP server on 127.0.0.1 that answers with `respond(path) -> (status, body)` and records requests."""

    def __init__(self, respond: Callable[[str], tuple[int, str]], protocol: str = "HTTP/1.0"):
        self.requests: list[tuple[str, dict[str, str]]] = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = protocol

            def do_GET(self):
                stub.requests.append((self.path, {key.lower(): value for key, value in self.headers.items()}))
                status, body = respond(self.path)
                payload = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def qdrant_stand_in(path: str) -> tuple[int, str]:
    """The read-only Qdrant REST answers a health check asks for, from a Qdrant that holds Lantern's collection."""
    path = path.split("?")[0]
    if path == "/":
        return 200, json.dumps({"title": "qdrant - vector search engine", "version": "1.20.0", "commit": None})
    if path in ("/healthz", "/livez", "/readyz"):
        return 200, "healthz check passed"
    if path == "/collections":
        return 200, json.dumps({"result": {"collections": []}, "status": "ok", "time": 0.0})
    if path.startswith("/collections/") and path.endswith("/exists"):
        return 200, json.dumps({"result": {"exists": True}, "status": "ok", "time": 0.0})
    return 404, json.dumps({"status": {"error": f"Not found: {path}"}, "time": 0.0})


@pytest.fixture
def stub() -> Iterator[Callable[..., StubServer]]:
    servers: list[StubServer] = []

    def start(respond: Callable[[str], tuple[int, str]], protocol: str = "HTTP/1.0") -> StubServer:
        servers.append(StubServer(respond, protocol))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@contextlib.contextmanager
def throwaway_database() -> Iterator[str]:
    name = f"lantern_compose_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(LOCAL_POSTGRES, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(LOCAL_POSTGRES, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty_database() -> Iterator[str]:
    with throwaway_database() as name:
        yield name


@pytest.fixture(scope="module")
def migrated_database(tmp_path_factory) -> Iterator[str]:
    with throwaway_database() as name:
        env = container_env("web", tmp_path_factory.mktemp("migrate"), database=name)
        result = run([sys.executable, "manage.py", "migrate", "--noinput"], env)
        assert result.returncode == 0, result.stdout + result.stderr
        yield name


@pytest.fixture(scope="module")
def redis_db() -> int:
    """A Redis database other runs on this machine are unlikely to share (pidbox replies are per database)."""
    return random.randint(1, 15)


# --- (1) The services and how they start -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["postgres", "redis", "qdrant", "vllm", "web", "worker", "beat"])
def test_every_service_lantern_needs_exists_with_a_healthcheck(name):
    services = compose()["services"]
    assert name in services, f"docker-compose.yml has no {name} service"
    healthcheck = services[name].get("healthcheck") or {}
    assert not healthcheck.get("disable"), f"{name}'s healthcheck is disabled"
    assert healthcheck.get("test", [None])[0] in ("CMD", "CMD-SHELL"), f"{name} has no healthcheck command"


def test_web_starts_only_once_postgres_redis_and_qdrant_are_healthy():
    depends_on = service("web")["depends_on"]
    for name in ("postgres", "redis", "qdrant"):
        assert depends_on[name]["condition"] == "service_healthy", name
    # The portal works (uploads, admin) while vLLM downloads its model, and starts on hosts without a GPU.
    assert depends_on["vllm"] == {"condition": "service_started", "required": False}


@pytest.mark.parametrize("name", ["worker", "beat"])
def test_worker_and_beat_start_after_web_has_migrated_and_is_healthy(name):
    depends_on = service(name)["depends_on"]
    for dependency in ("postgres", "redis", "qdrant", "web"):
        assert depends_on[dependency]["condition"] == "service_healthy", f"{name} -> {dependency}"


def test_web_worker_and_beat_run_the_one_image_this_dockerfile_builds():
    images = {service(name)["image"] for name in OUR_SERVICES}
    assert len(images) == 1
    for name in OUR_SERVICES:
        assert service(name)["build"] in (".", {"context": "."}), name


def test_uploaded_files_are_on_a_volume_that_web_and_worker_share():
    media_root = Path(service_env("web")["MEDIA_ROOT"])
    declared = compose()["volumes"]

    def volume_holding(name: str) -> str:
        for mount in service(name)["volumes"]:
            source, target = mount.split(":")[:2]
            if media_root == Path(target) or Path(target) in media_root.parents:
                assert source in declared, f"{source} is not a named volume"
                return source
        raise AssertionError(f"{media_root} is on no volume of {name}")

    assert volume_holding("web") == volume_holding("worker")
    assert service_env("worker")["MEDIA_ROOT"] == str(media_root)


def test_the_data_volume_is_mounted_where_the_image_keeps_lantern_data_and_owned_by_its_user():
    data_dir = dockerfile_env()["LANTERN_DATA_DIR"]
    for name in OUR_SERVICES:
        targets = [mount.split(":")[1] for mount in service(name)["volumes"]]
        assert data_dir in targets, name
    beat_schedule = service_command("beat")[service_command("beat").index("--schedule") + 1]
    assert Path(data_dir) in Path(beat_schedule).parents
    # A new named volume copies the ownership of the image's directory: the app user must own it.
    instructions = dockerfile_instructions()
    user = [rest for keyword, rest in instructions if keyword == "USER"][-1]
    assert user not in ("root", "0")
    chown = " ".join(rest for keyword, rest in instructions if keyword == "RUN" and "chown" in rest)
    assert re.search(rf"chown [^&]*{user}:{user}[^&]* {re.escape(data_dir)}\b", chown), chown


def test_backing_services_keep_their_data_on_named_volumes():
    declared = compose()["volumes"]
    expected = {
        "postgres": "/var/lib/postgresql/data",
        "redis": "/data",
        "qdrant": "/qdrant/storage",
        "vllm": "/root/.cache/huggingface",
    }
    for name, target in expected.items():
        mounts = dict(mount.split(":")[1::-1] for mount in service(name)["volumes"])
        assert mounts.get(target) in declared, f"{name}: {target} is not on a named volume"


def test_service_urls_point_at_the_compose_services_and_their_credentials():
    env = service_env("web")
    db = urlsplit(env["DATABASE_URL"])
    postgres = service("postgres")["environment"]
    assert (db.scheme, db.hostname, db.port) == ("postgres", "postgres", 5432)
    assert (db.username, db.password, db.path) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        "/" + postgres["POSTGRES_DB"],
    )
    assert env["REDIS_URL"].startswith("redis://redis:6379/")
    assert env["QDRANT_URL"] == "http://qdrant:6333"
    vllm = service("vllm")["command"]
    assert env["LLM_BASE_URL"] == f"http://vllm:{vllm[vllm.index('--port') + 1]}/v1"


def test_vllm_serves_on_a_gpu_under_the_model_name_the_portal_asks_for():
    for values in (filled_env(), filled_env() | {"LLM_MODEL": "house-model", "VLLM_MODEL": "org/House-7B"}):
        vllm = service("vllm", values)
        assert vllm["entrypoint"] == ["vllm", "serve"]
        assert vllm["command"][0] == values["VLLM_MODEL"]  # `vllm serve` takes the model positionally
        served_name = vllm["command"][vllm["command"].index("--served-model-name") + 1]
        for name in OUR_SERVICES:
            assert service_env(name, values)["LLM_MODEL"] == served_name
    devices = service("vllm")["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]


def test_compose_refuses_to_start_until_the_secret_key_and_database_password_are_set():
    for name in ("SECRET_KEY", "POSTGRES_PASSWORD"):
        assert env_example()[name] == "", f".env.example must not ship a usable {name}"
        with pytest.raises(MissingVariable, match=name):
            compose(filled_env() | {name: ""})


def test_shell_variables_in_compose_are_escaped_from_compose_interpolation():
    unescaped = re.findall(r"(?<!\$)\$(?!\$|\{)\w+", compose_text().replace("$$", ""))
    assert unescaped == [], f"compose would substitute these itself: {unescaped}"


# --- (2) Variables: compose, settings.py and .env.example agree ------------------------------------------------


@pytest.mark.parametrize("name", OUR_SERVICES)
def test_every_variable_compose_gives_our_services_is_read_by_settings(name):
    unknown = set(service_env(name)) - settings_variables()
    assert not unknown, f"{name} sets variables portal/settings.py never reads: {sorted(unknown)}"


def test_every_variable_the_dockerfile_sets_is_read_by_settings_or_the_python_runtime():
    unknown = set(dockerfile_env()) - settings_variables() - RUNTIME_VARIABLES
    assert not unknown, f"the Dockerfile sets variables nothing reads: {sorted(unknown)}"


def test_env_example_documents_exactly_the_variables_compose_reads():
    interpolated = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", compose_text()))
    documented = set(env_example())
    assert documented - interpolated == set(), "in .env.example but unused by docker-compose.yml"
    assert interpolated - documented == set(), "read by docker-compose.yml but missing from .env.example"


def test_our_services_run_in_production_mode_with_the_embedded_worker_off():
    for name in OUR_SERVICES:
        env = service_env(name)
        assert env["LANTERN_PRODUCTION"] == "true"
        assert env["LANTERN_EMBEDDED_WORKER"] == "false"
    image_env = dockerfile_env()
    assert image_env["HF_HUB_OFFLINE"] == "1"
    assert image_env["LANTERN_DATA_DIR"] == "/data"


# --- (3) The commands name things that exist ---------------------------------------------------------------


def test_web_migrates_and_collects_static_files_before_it_serves():
    script = service_command("web")[-1]
    steps = [step.strip() for step in script.split("&&")]
    assert steps[0] == "python manage.py migrate --noinput"
    assert steps[1] == "python manage.py collectstatic --noinput"
    assert steps[2].startswith("exec uvicorn portal.asgi:application --host 0.0.0.0 --port 8000 --workers ")
    assert steps[2].split("--workers ")[1].isdigit()


def test_manage_py_has_the_commands_compose_and_the_admin_instructions_use(tmp_path):
    commands = python_json(
        "import json, django; django.setup(); from django.core.management import get_commands;"
        "print(json.dumps(sorted(get_commands())))",
        container_env("web", tmp_path),
    )
    assert {"migrate", "collectstatic", "createsuperuser"} <= set(commands)


def test_the_asgi_application_uvicorn_is_given_imports(tmp_path):
    module, attribute = service_command("web")[-1].split("exec uvicorn ")[1].split()[0].split(":")
    found = python_json(
        f"import importlib, json; app = getattr(importlib.import_module({module!r}), {attribute!r});"
        "print(json.dumps({'callable': callable(app), 'type': type(app).__name__}))",
        container_env("web", tmp_path),
    )
    assert found == {"callable": True, "type": "ASGIHandler"}


TASK_QUEUES = """
import json
import django
from celery.app.utils import find_app

app = find_app("portal")  # the lookup `celery -A portal` does
django.setup()
app.loader.import_default_modules()
from django.conf import settings

routes = app.conf.task_routes if isinstance(app.conf.task_routes, dict) else {}
print(json.dumps({
    "setting": settings.CELERY_TASK_DEFAULT_QUEUE,
    "default": app.conf.task_default_queue,
    "tasks": sorted(name for name in app.tasks if not name.startswith("celery.")),
    "explicit": sorted({task.queue for task in app.tasks.values() if getattr(task, "queue", None)}),
    "routed": sorted({route["queue"] for route in routes.values() if isinstance(route, dict) and "queue" in route}),
}))
"""


def test_the_worker_consumes_the_queue_every_task_is_sent_to(tmp_path):
    command = service_command("worker")
    assert command[:4] == ["celery", "-A", "portal", "worker"]
    consumed = set(command[command.index("-Q") + 1].split(","))
    found = python_json(TASK_QUEUES, container_env("worker", tmp_path))
    assert found["tasks"], "celery -A portal found no Lantern tasks"
    assert consumed == {found["setting"]} == {found["default"]}
    assert set(found["explicit"]) | set(found["routed"]) <= consumed


def test_beat_command_uses_options_this_celery_has(tmp_path):
    command = service_command("beat")
    assert command[:4] == ["celery", "-A", "portal", "beat"]
    help_text = run(["celery", "-A", "portal", "beat", "--help"], container_env("beat", tmp_path)).stdout
    for option in (arg for arg in command[4:] if arg.startswith("--")):
        assert option in help_text, f"celery beat has no {option}"


def test_the_web_healthcheck_script_ships_in_the_image():
    script = service("web")["healthcheck"]["test"][2]
    assert (REPO / script).is_file()
    for needed in ("manage.py", "pyproject.toml", "portal/settings.py", "kb", "ingestion", "chat", "templates", script):
        assert not dockerignored(needed), f".dockerignore leaves {needed} out of the image"
    for private in (".env", ".venv", "data", ".git"):
        assert dockerignored(private), f".dockerignore sends {private} to the build"


# --- Healthchecks, run as compose writes them -------------------------------------------------------------


def test_postgres_healthcheck_reports_a_server_accepting_tcp_connections():
    argv = healthcheck_argv("postgres")
    assert "127.0.0.1" in argv, "pg_isready over the Unix socket passes during initdb, before TCP is up"
    result = run(argv, dict(os.environ))
    assert result.returncode == 0, result.stdout + result.stderr


def test_redis_healthcheck_passes_against_a_running_redis():
    result = run(healthcheck_argv("redis"), dict(os.environ))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("protocol", ["HTTP/1.0", "HTTP/1.1"])
def test_qdrant_healthcheck_passes_only_when_readyz_answers_200(stub, protocol):
    ready = stub(lambda path: (200, "all shards are ready") if path == "/readyz" else (404, ""), protocol)
    not_ready = stub(lambda path: (503, "some shards are not ready"), protocol)

    def probe(port: int) -> int:
        return run(healthcheck_argv("qdrant", {"/6333": f"/{port}"}), dict(os.environ), timeout=10).returncode

    assert probe(ready.port) == 0
    assert ready.requests[0][0] == "/readyz"
    assert probe(not_ready.port) != 0
    assert probe(free_port()) != 0


def test_vllm_healthcheck_passes_only_when_health_answers_200(stub):
    healthy = stub(lambda path: (200, "") if path == "/health" else (404, ""))
    loading = stub(lambda path: (503, ""))
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}")
    assert run(healthcheck_argv("vllm", {":8000/": f":{healthy.port}/"}), env).returncode == 0
    assert run(healthcheck_argv("vllm", {":8000/": f":{loading.port}/"}), env).returncode != 0


def test_web_healthcheck_presents_an_allowed_host_over_https_and_needs_a_200(stub, tmp_path):
    healthy = stub(lambda path: (200, '{"status": "ok"}'))
    failing = stub(lambda path: (503, '{"status": "error"}'))
    env = container_env("web", tmp_path)
    assert run(healthcheck_argv("web", {"127.0.0.1:8000": f"127.0.0.1:{healthy.port}"}), env).returncode == 0
    path, headers = healthy.requests[0]
    assert path == "/healthz"
    assert headers["x-forwarded-proto"] == "https"
    assert headers["host"] in env["ALLOWED_HOSTS"].split(",")
    assert run(healthcheck_argv("web", {"127.0.0.1:8000": f"127.0.0.1:{failing.port}"}), env).returncode == 1
    assert run(healthcheck_argv("web", {"127.0.0.1:8000": f"127.0.0.1:{free_port()}"}), env).returncode == 1


# --- (4) Settings under compose's environment ----------------------------------------------------------------

SETTINGS_SUMMARY = """
import json
from django.conf import settings
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "broker": settings.CELERY_BROKER_URL,
    "embedded_worker": settings.EMBEDDED_WORKER,
    "session_cookie_secure": settings.SESSION_COOKIE_SECURE,
    "csrf_cookie_secure": settings.CSRF_COOKIE_SECURE,
    "hsts_seconds": settings.SECURE_HSTS_SECONDS,
    "proxy_ssl_header": settings.SECURE_PROXY_SSL_HEADER,
    "debug": settings.DEBUG,
    "secret_key": settings.SECRET_KEY,
    "allowed_hosts": settings.ALLOWED_HOSTS,
    "qdrant_url": settings.QDRANT_URL,
    "llm_base_url": settings.LLM_BASE_URL,
    "llm_model": settings.LLM_MODEL,
    "media_root": str(settings.MEDIA_ROOT),
    "data_dir": str(settings.DATA_DIR),
}))
"""


@pytest.mark.parametrize("name", OUR_SERVICES)
def test_compose_environment_gives_postgres_redis_secure_cookies_and_hsts(name, tmp_path):
    env = container_env(name, tmp_path)
    found = python_json(SETTINGS_SUMMARY, env)
    assert found["engine"] == "django.db.backends.postgresql"
    assert found["broker"] == env["REDIS_URL"]
    assert found["embedded_worker"] is False
    assert found["session_cookie_secure"] is True and found["csrf_cookie_secure"] is True
    assert found["hsts_seconds"] >= 31536000
    assert found["proxy_ssl_header"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert found["debug"] is False
    assert found["secret_key"] == env["SECRET_KEY"]
    assert found["allowed_hosts"] == env["ALLOWED_HOSTS"].split(",")
    assert (found["qdrant_url"], found["llm_base_url"], found["llm_model"]) == (
        env["QDRANT_URL"],
        env["LLM_BASE_URL"],
        env["LLM_MODEL"],
    )
    assert found["data_dir"] == env["LANTERN_DATA_DIR"]
    assert found["media_root"] == env["MEDIA_ROOT"]
    # Nothing of the embedded setup appears on the shared volume: no generated key, no filesystem broker.
    assert not (Path(found["data_dir"]) / "secret_key").exists()
    assert not (Path(found["data_dir"]) / "broker").exists()


def test_django_deployment_check_passes_under_compose_environment(tmp_path):
    env = container_env("web", tmp_path)
    result = run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)
    assert result.returncode == 0, result.stdout + result.stderr


# --- (5) Migrations against PostgreSQL, with compose's DATABASE_URL shape ----------------------------------------


@pytest.mark.slow
def test_migrate_builds_a_table_for_every_model_in_postgresql(tmp_path, empty_database):
    env = container_env("web", tmp_path, database=empty_database)
    migrate = run([sys.executable, "manage.py", "migrate", "--noinput"], env)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    found = python_json(
        "import json, django; django.setup(); from django.apps import apps; from django.db import connection;"
        "tables = set(connection.introspection.table_names());"
        "print(json.dumps({'vendor': connection.vendor, 'missing': sorted(m._meta.label for m in apps.get_models()"
        " if m._meta.managed and m._meta.db_table not in tables),"
        " 'apps': sorted({m._meta.app_label for m in apps.get_models()})}))",
        env,
    )
    assert found["vendor"] == "postgresql"
    assert found["missing"] == [], f"models without a migration: {found['missing']}"
    assert {"kb", "ingestion", "chat"} & set(found["apps"]), "no Lantern models are installed yet"
    unapplied = run([sys.executable, "manage.py", "migrate", "--check"], env)
    assert unapplied.returncode == 0, unapplied.stdout + unapplied.stderr


# --- The services' own commands, started here ------------------------------------------------------------------


@pytest.mark.slow
def test_web_command_migrates_collects_static_then_serves_healthz_and_static_files(
    tmp_path, empty_database, redis_db, stub
):
    qdrant = stub(qdrant_stand_in, "HTTP/1.1")
    port = free_port()
    here = f"--host 127.0.0.1 --port {port}"  # not on every interface of this machine, nor on a busy 8000
    argv = [arg.replace("--host 0.0.0.0 --port 8000", here) for arg in service_command("web")]
    assert argv != service_command("web")
    env = container_env("web", tmp_path, database=empty_database, redis_db=redis_db, qdrant_url=qdrant.url)
    probe = healthcheck_argv("web", {"127.0.0.1:8000": f"127.0.0.1:{port}"})
    log = tmp_path / "web.log"
    with running(argv, env, log) as web:
        healthy = wait_until(lambda: web.poll() is not None or run(probe, env, timeout=30).returncode == 0, 240)
        assert healthy and web.poll() is None, f"{run(probe, env).stderr}\n{tail(log)}"
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/static/admin/css/base.css",
            headers={"Host": env["ALLOWED_HOSTS"].split(",")[0], "X-Forwarded-Proto": "https"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
    assert (Path(env["STATIC_ROOT"]) / "admin" / "css" / "base.css").is_file()


@pytest.mark.slow
def test_worker_started_by_compose_answers_its_healthcheck_and_consumes_only_the_lantern_queue(
    tmp_path, migrated_database, redis_db
):
    env = container_env("worker", tmp_path, database=migrated_database, redis_db=redis_db)
    probe = healthcheck_argv("worker")
    log = tmp_path / "worker.log"
    with running(service_command("worker"), env, log) as worker:
        healthy = wait_until(lambda: worker.poll() is not None or run(probe, env, timeout=60).returncode == 0, 180)
        assert healthy and worker.poll() is None, tail(log)
        node = f"celery@{env['HOSTNAME']}"
        result = run(["celery", "-A", "portal", "inspect", "active_queues", "-t", "10", "-d", node, "-j"], env)
        assert result.returncode == 0, result.stdout + result.stderr
        queues = json.loads(result.stdout.strip().splitlines()[-1])[node]
        command = service_command("worker")
        assert [queue["name"] for queue in queues] == [command[command.index("-Q") + 1]]


@pytest.mark.slow
def test_beat_started_by_compose_answers_its_healthcheck_and_keeps_its_schedule_on_the_volume(
    tmp_path, migrated_database, redis_db
):
    env = container_env("beat", tmp_path, database=migrated_database, redis_db=redis_db)
    argv = [localize_path(arg, tmp_path) for arg in service_command("beat")]
    schedule = Path(argv[argv.index("--schedule") + 1])
    probe = healthcheck_argv("beat")
    log = tmp_path / "beat.log"
    with running(argv, env, log) as beat:
        healthy = wait_until(lambda: beat.poll() is not None or run(probe, env, timeout=60).returncode == 0, 180)
        assert healthy and beat.poll() is None, tail(log)
    assert list(schedule.parent.glob(schedule.name + "*")), f"beat wrote no schedule at {schedule}"
    assert schedule.parent == Path(env["LANTERN_DATA_DIR"])


def test_the_beat_healthcheck_fails_when_no_beat_is_running(tmp_path, redis_db):
    env = container_env("beat", tmp_path, redis_db=redis_db) | {"HOSTNAME": f"absent-{uuid.uuid4().hex[:8]}"}
    assert run(healthcheck_argv("beat"), env, timeout=60).returncode != 0


def test_pyproject_dependencies_are_what_the_image_installs():
    """The Dockerfile installs pyproject's dependencies from a list it prints with this same expression."""
    run_lines = [rest for keyword, rest in dockerfile_instructions() if keyword == "RUN" and "tomllib" in rest]
    assert run_lines, "the Dockerfile no longer reads its dependencies from pyproject.toml"
    code = re.search(r'python -c "(.+?)"', run_lines[0]).group(1)
    printed = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert printed.stdout.split("\n")[:-1] == declared
