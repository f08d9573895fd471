"""Fixtures for browser tests: a live portal in its own process, a FakeLLM it answers with, and Debian's chromium
driven by Playwright. A test module opts in with `pytest_plugins = ["tests.browser"]`, which also installs the hook
that attaches evidence to failures.

    live_portal      `manage.py serve` on a free port, with its own data dir and LLM_BASE_URL = portal_llm (module scope)
    portal_llm       the FakeLLM the portal talks to; script answers with `portal_llm.add_replies(...)`, and hold them
                     before their first token with `portal_llm.holding_first_token()` (module scope)
    browser          chromium at /usr/bin/chromium, headless (module scope)
    page             a fresh browser context (no cookies) on the portal; `page.goto("/upload/")` works
    signed_in_page   `page` after signing in as the portal's first administrator through the sign-in form

The portal is shared by the tests of a module (start-up runs migrations; the first upload loads the embedding model),
so each test uses its own collection name and file contents: a file whose content the portal already has is skipped
as unchanged, not indexed again.

Scopes stop at the module on purpose: while Playwright's sync API is started, the thread has a running asyncio loop,
and Django refuses ORM calls from it (SynchronousOnlyOperation), so a session-wide browser would break every test
module collected after this one.

In the services pass (DATABASE_URL and REDIS_URL set) the portal runs as production does: a fresh PostgreSQL
database on the same server, dropped afterwards, and the Redis broker on a queue of its own. Its worker stays inside
the portal process, because the vector store is still embedded and Qdrant local mode locks its folder to one process.

On failure the report gets the portal's log for that test, the page's JavaScript errors, and the paths of a
screenshot and a Playwright trace in test-artifacts/browser/ (`playwright show-trace <path>` replays it).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from tests.fake_llm import FakeLLM

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
START_TIMEOUT_SECONDS = 120.0
# Variables that would point the portal at someone else's state: the test session's data dir and queue, a
# developer's real Qdrant or model server. The portal gets its own values for each, or the embedded default.
NOT_INHERITED = (
    "LANTERN_DATA_DIR", "DATABASE_URL", "REDIS_URL", "QDRANT_URL", "QDRANT_PATH", "MEDIA_ROOT", "STATIC_ROOT",
    "CELERY_QUEUE", "LLM_BASE_URL", "LANTERN_EMBEDDED_WORKER", "LANTERN_HOST", "LANTERN_PORT", "SECRET_KEY",
)


class PortalDidNotStart(RuntimeError):
    pass


@dataclass
class LivePortal:
    url: str  # ends with "/"
    data_dir: Path
    log_path: Path
    process: subprocess.Popen
    admin_username: str = "admin"  # what `serve` names the first administrator
    admin_password: str = ""

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def log_since(self, offset: int) -> str:
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")


# --- the portal ---------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def _services_for_portal() -> Iterator[dict[str, str]]:
    """In the services pass: a fresh PostgreSQL database next to the test one, plus the Redis broker; else nothing."""
    database_url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        yield {}
        return
    import psycopg

    name = f"lantern_browser_{secrets.token_hex(4)}"
    server = urlsplit(database_url)
    admin_dsn = server._replace(scheme="postgresql").geturl()
    with psycopg.connect(admin_dsn, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        env = {"DATABASE_URL": server._replace(path=f"/{name}").geturl()}
        if redis_url:
            env |= {"REDIS_URL": redis_url, "LANTERN_EMBEDDED_WORKER": "1"}
        yield env
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _portal_env(*, data_dir: Path, llm_base_url: str, services: dict[str, str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in NOT_INHERITED}
    return env | services | {
        "LANTERN_DATA_DIR": str(data_dir),
        "LLM_BASE_URL": llm_base_url,
        "CELERY_QUEUE": f"lantern-browser-{secrets.token_hex(4)}",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",  # the log is evidence on failure; keep it current
    }


def _answers_healthz(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _wait_until_healthy(portal: LivePortal, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not _answers_healthz(portal.url):
        if portal.process.poll() is not None:
            raise PortalDidNotStart(f"`manage.py serve` exited with code {portal.process.returncode}:\n{portal.log_since(0)}")
        if time.monotonic() > deadline:
            raise PortalDidNotStart(f"The portal did not answer /healthz within {timeout:.0f}s:\n{portal.log_since(0)}")
        time.sleep(0.2)  # polling interval, not a wait for time to pass


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()  # uvicorn shuts down, then serve stops its worker and closes the vector store
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running_portal(*, data_dir: Path, llm_base_url: str) -> Iterator[LivePortal]:
    """`manage.py serve` in its own process, answering on a free port, until the block ends."""
    with _services_for_portal() as services:
        port = _free_port()
        log_path = data_dir / "portal.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port)],
                cwd=ROOT, env=_portal_env(data_dir=data_dir, llm_base_url=llm_base_url, services=services),
                stdout=log, stderr=subprocess.STDOUT,
            )
        portal = LivePortal(url=f"http://127.0.0.1:{port}/", data_dir=data_dir, log_path=log_path, process=process)
        try:
            _wait_until_healthy(portal, timeout=START_TIMEOUT_SECONDS)
            portal.admin_password = (data_dir / "initial_admin_password.txt").read_text().strip()
            yield portal
        finally:
            _stop(process)


class GatedFakeLLM(FakeLLM):
    """A FakeLLM whose answers can be held before their first token, so a test can look at the page in between
    (sources shown, answer not begun) without racing a clock: on a busy machine a fixed delay is not a window."""

    HOLD_AT_MOST_SECONDS = 60.0  # a test that fails while holding must not leave a server thread stuck for good

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._released = threading.Event()
        self._released.set()

    @contextmanager
    def holding_first_token(self) -> Iterator[None]:
        self._released.clear()
        try:
            yield
        finally:
            self._released.set()

    def _wait_first_token(self) -> None:  # FakeLLM's hook, called after the role chunk and before the first delta
        super()._wait_first_token()
        self._released.wait(self.HOLD_AT_MOST_SECONDS)


@pytest.fixture(scope="module")
def portal_llm() -> Iterator[GatedFakeLLM]:
    with GatedFakeLLM() as fake:
        yield fake


@pytest.fixture(scope="module")
def live_portal(tmp_path_factory, portal_llm) -> Iterator[LivePortal]:
    with running_portal(data_dir=tmp_path_factory.mktemp("portal"), llm_base_url=portal_llm.base_url) as portal:
        yield portal


# --- the browser --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/install-browser.sh` (never `playwright install`).", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class _Watch:
    """What a failing browser test reports: set up by `page`, read by the report hook below."""

    page: Page
    portal: LivePortal
    log_offset: int
    artifacts: Path
    page_errors: list[str] = field(default_factory=list)
    failed: bool = False


_WATCH = pytest.StashKey[_Watch]()


def _artifacts_dir(nodeid: str) -> Path:
    return ARTIFACTS / re.sub(r"[^\w.-]+", "_", nodeid.split("::")[-1])


@pytest.fixture
def page(request, browser: Browser, live_portal: LivePortal) -> Iterator[Page]:
    context = browser.new_context(base_url=live_portal.url, locale="en-US", viewport={"width": 1280, "height": 900})
    context.tracing.start(screenshots=True, snapshots=True)
    page = context.new_page()
    watch = _Watch(page=page, portal=live_portal, log_offset=live_portal.log_size(), artifacts=_artifacts_dir(request.node.nodeid))
    page.on("pageerror", lambda error: watch.page_errors.append(f"{page.url}: {error}"))
    page.on("console", lambda message: _console_error(message) and watch.page_errors.append(f"{page.url}: console: {message.text}"))
    request.node.stash[_WATCH] = watch
    yield page
    context.tracing.stop(path=watch.artifacts / "trace.zip" if watch.failed else None)
    context.close()


def _console_error(message: ConsoleMessage) -> bool:
    # The portal has no favicon, so every first page load logs a 404 for it: noise, not evidence.
    return message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico")


@pytest.fixture
def signed_in_page(page: Page, live_portal: LivePortal) -> Page:
    """`page`, signed in as the first administrator, the way a person signs in."""
    page.goto("/")
    page.get_by_label("Username").fill(live_portal.admin_username)
    page.get_by_label("Password").fill(live_portal.admin_password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name=f"Sign out {live_portal.admin_username}")).to_be_visible()
    return page


# --- evidence on failure ------------------------------------------------------------------------------------------


def _evidence(watch: _Watch) -> list[tuple[str, str]]:
    sections = [("portal log during this test", watch.portal.log_since(watch.log_offset) or "(nothing logged)")]
    if watch.page_errors:
        sections.append(("page JavaScript errors", "\n".join(watch.page_errors)))
    if not watch.failed:  # the first failing phase; teardown may fail again after the page is closed
        watch.failed = True
        shutil.rmtree(watch.artifacts, ignore_errors=True)
        watch.artifacts.mkdir(parents=True)
        try:
            watch.page.screenshot(path=watch.artifacts / "screenshot.png", full_page=True)
            (watch.artifacts / "page.html").write_text(watch.page.content())
        except Exception as error:  # the page may be what broke; the log still matters more
            sections.append(("screenshot", f"not taken: {error}"))
        sections.append(("browser artifacts", f"page at {watch.page.url}\nsaved in {watch.artifacts}/: screenshot.png, "
                          "page.html, trace.zip (written at teardown; open it at https://trace.playwright.dev)"))
    return sections


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    report = yield
    watch = item.stash.get(_WATCH, None)
    if watch is not None and report.failed:
        report.sections.extend(_evidence(watch))
    return report
