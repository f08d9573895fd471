"""The chat widget on an intranet page, in Debian's chromium: the host page is served by a small HTTP server on another
port (another origin), and loads /widget.js from a live portal (fixtures in tests/browser.py).

The portal runs in its own process with its own database, so its widget key, collections and documents are made by a
`manage.py shell` run with the portal's own environment, which also waits until the documents are indexed.
"""

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import FrameLocator, Page, expect

from demo.mint_token import mint_token

pytest_plugins = ["tests.browser"]
pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
SETUP_TIMEOUT_SECONDS = 300  # the portal's first upload loads the embedding model
SALARY_QUESTION = "What is the salary band for senior engineers?"


# --- the intranet: pages on another origin --------------------------------------------------------------------------


@dataclass
class HostSite:
    """An intranet web server on its own port: a test puts pages in `pages` and opens `url(path)`."""

    server: ThreadingHTTPServer
    pages: dict[str, str] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.origin + path


@pytest.fixture(scope="module")
def intranets() -> Iterator[tuple[HostSite, HostSite]]:
    """Two intranet sites: the first is listed on the widget key, the second is not."""
    sites = []
    for _ in range(2):
        site = HostSite(server=None)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self, site=site):
                body = site.pages.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write((body or "not found").encode())

            def log_message(self, *args):
                pass

        site.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=site.server.serve_forever, daemon=True).start()
        sites.append(site)
    yield sites[0], sites[1]
    for site in sites:
        site.server.shutdown()
        site.server.server_close()


# --- the portal's data --------------------------------------------------------------------------------------------

SETUP_SCRIPT = """
import json, time
from django.contrib.auth.models import Group
from chat.models import WidgetKey
from ingestion.services import IncomingFile, documents_upload
from kb.models import Collection, Document

spec = json.loads({spec!r})
key = WidgetKey.objects.create(name="Ask the handbook", allowed_origins=[spec["origin"]])
handbook = Collection.objects.create(name="Widget handbook", slug="widget-handbook")
payroll = Collection.objects.create(name="Widget payroll", slug="widget-payroll", access=Collection.Access.GROUPS)
payroll.groups.add(Group.objects.get_or_create(name="payroll")[0])
documents = []
for collection, name, text in ((handbook, "leave.md", spec["leave"]), (payroll, "salaries.md", spec["salaries"])):
    documents += documents_upload(collection=collection, files=[IncomingFile(name=name, data=text.encode())]).queued
deadline = time.monotonic() + {timeout}
while Document.objects.filter(pk__in=[d.pk for d in documents], status=Document.Status.INDEXED).count() < len(documents):
    assert time.monotonic() < deadline, list(Document.objects.values_list("title", "status", "error"))
    time.sleep(0.5)  # polling the portal's worker, not waiting for time to pass
print("WIDGET " + json.dumps({{"key": key.key, "secret": key.secret}}))
"""

LEAVE = "# Leave policy\n\n## Annual leave\n\nYou can carry over a maximum of 240 annual leave hours into the next leave year.\n"
SALARIES = "# Salary bands 2026\n\n## Engineering\n\nThe salary band for senior engineers runs from 91,000 to 118,000 euros a year.\n"


@dataclass(frozen=True)
class Widget:
    key: str
    secret: str

    def token(self, username: str, groups: list[str], **kwargs) -> str:
        return mint_token(key=self.key, secret=self.secret, username=username, groups=groups, **kwargs)


def _portal_environment(pid: int) -> dict[str, str]:
    """The live portal's own environment (its data dir, database and queue), to run a command against it."""
    with open(f"/proc/{pid}/environ", "rb") as environ:
        pairs = [item.split(b"=", 1) for item in environ.read().split(b"\0") if b"=" in item]
    return {name.decode(): value.decode() for name, value in pairs}


@pytest.fixture(scope="module")
def widget(live_portal, intranets) -> Widget:
    allowed, _ = intranets
    spec = json.dumps({"origin": allowed.origin, "leave": LEAVE, "salaries": SALARIES})
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SETUP_SCRIPT.format(spec=spec, timeout=SETUP_TIMEOUT_SECONDS)],
        cwd=ROOT, env=_portal_environment(live_portal.process.pid), capture_output=True, text=True,
        timeout=SETUP_TIMEOUT_SECONDS + 60,
    )
    line = next((line for line in result.stdout.splitlines() if line.startswith("WIDGET ")), None)
    assert line, f"setting up the portal failed:\n{result.stdout}\n{result.stderr}"
    return Widget(**json.loads(line.removeprefix("WIDGET ")))


def intranet_page(site: HostSite, live_portal, widget: Widget, *, token: str = "", token_url: str = "", name: str = "/index.html") -> str:
    """An intranet page with the one-line embed, plus CSS that would restyle every button it could reach."""
    site.pages[name] = (
        "<!doctype html><html lang=en><head><title>Intranet</title>"
        "<style>button { background: red !important; font-size: 40px !important; }</style></head>"
        "<body><h1>Intranet home</h1><p>Welcome.</p>"
        f'<script src="{live_portal.url}widget.js" data-key="{widget.key}" data-token="{token}" data-token-url="{token_url}" async>'
        "</script>"
        "</body></html>"
    )
    return site.url(name)


def open_panel(page: Page) -> FrameLocator:
    page.get_by_role("button", name="Ask Lantern").click()
    expect(page.get_by_title("Ask the handbook")).to_be_visible()
    frame = page.frame_locator("iframe[title='Ask the handbook']")
    expect(frame.get_by_text(re.compile(r"^Asking as "))).to_be_visible()
    return frame


# --- tests ----------------------------------------------------------------------------------------------------------


def test_the_widget_on_an_allowed_intranet_page_streams_a_cited_answer(page: Page, live_portal, portal_llm, intranets, widget):
    allowed, _ = intranets
    page.goto(intranet_page(allowed, live_portal, widget, token=widget.token("paula", ["payroll"])))
    panel = open_panel(page)
    expect(panel.get_by_text("Asking as paula.")).to_be_visible()
    portal_llm.add_replies(["Senior engineers earn ", "91,000 to 118,000 euros a year [1]."])

    with portal_llm.holding_first_token():
        panel.get_by_label("Your question").fill(SALARY_QUESTION)
        panel.get_by_role("button", name="Ask").click()
        expect(panel.get_by_text("Salary bands 2026", exact=True)).to_be_visible()  # the sources, before any token
        expect(panel.get_by_text("Writing…")).to_be_visible()

    expect(panel.get_by_text("Senior engineers earn 91,000 to 118,000 euros a year")).to_be_visible()
    citation = panel.get_by_role("link", name="[1]")
    citation.click()
    expect(panel.get_by_text("runs from 91,000 to 118,000 euros a year.", exact=False).last).to_be_visible()
    launcher_color = page.get_by_role("button", name="Ask Lantern").evaluate("b => getComputedStyle(b).backgroundColor")
    assert launcher_color != "rgb(255, 0, 0)", "the intranet page's CSS reached the launcher"


def test_a_token_for_a_user_outside_the_group_gets_no_restricted_passage(page: Page, live_portal, intranets, widget):
    allowed, _ = intranets
    page.goto(intranet_page(allowed, live_portal, widget, token=widget.token("erin", ["hr"])))
    panel = open_panel(page)
    # No scripted reply: with no readable passage the model may not be asked at all, and a leftover reply would
    # answer the next test's question. If it is asked, it says the FakeLLM's default "OK".

    panel.get_by_label("Your question").fill(SALARY_QUESTION)
    panel.get_by_role("button", name="Ask").click()

    expect(panel.get_by_text("Answer ready.")).to_be_attached()
    conversation = panel.locator("#wp-turns")
    expect(conversation).to_contain_text(SALARY_QUESTION)
    expect(conversation).not_to_contain_text("Salary bands")
    expect(conversation).not_to_contain_text("118,000")


def test_the_widget_is_used_with_the_keyboard_at_360_pixels(page: Page, live_portal, intranets, widget):
    allowed, _ = intranets
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(intranet_page(allowed, live_portal, widget, token=widget.token("erin", [])))
    launcher = page.get_by_role("button", name="Ask Lantern")
    expect(launcher).to_be_visible()

    launcher.focus()
    page.keyboard.press("Enter")
    panel = page.frame_locator("iframe[title='Ask the handbook']")
    expect(panel.get_by_label("Your question")).to_be_focused()
    box = page.get_by_title("Ask the handbook").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 360
    page.keyboard.press("Escape")

    expect(page.get_by_title("Ask the handbook")).to_be_hidden()
    expect(launcher).to_be_focused()
    expect(launcher).to_have_attribute("aria-expanded", "false")


def test_a_page_on_an_origin_the_key_does_not_list_gets_no_widget(page: Page, live_portal, intranets, widget):
    _, elsewhere = intranets
    url = intranet_page(elsewhere, live_portal, widget, token=widget.token("erin", []))

    with page.expect_console_message(lambda message: "Lantern widget: not added" in message.text):
        page.goto(url)

    expect(page.get_by_role("button", name="Ask Lantern")).to_have_count(0)


def test_a_page_on_an_origin_the_key_does_not_list_cannot_frame_the_panel(page: Page, live_portal, intranets, widget):
    allowed, elsewhere = intranets
    frame_page = f'<!doctype html><title>Frame</title><iframe title="Panel" src="{live_portal.url}widget/panel?key={widget.key}"></iframe>'
    allowed.pages["/frame.html"] = elsewhere.pages["/frame.html"] = frame_page

    page.goto(allowed.url("/frame.html"))  # "load" waits for the frame, shown or refused
    expect(page.frame_locator("iframe").get_by_label("Your question")).to_be_attached()
    page.goto(elsewhere.url("/frame.html"))

    frame = page.frames[1]
    assert "/widget/panel" not in frame.url  # chromium shows its own error page instead
    assert frame.get_by_label("Your question").count() == 0


def test_someone_signed_in_to_the_portal_asks_as_themselves_without_a_token(signed_in_page: Page, live_portal, portal_llm, intranets, widget):
    page = signed_in_page
    allowed, _ = intranets
    page.goto(intranet_page(allowed, live_portal, widget, name="/no-token.html"))
    panel = open_panel(page)
    expect(panel.get_by_text(f"Asking as {live_portal.admin_username}.")).to_be_visible()
    portal_llm.add_replies(["Up to 240 hours carry over [1]."])

    panel.get_by_label("Your question").fill("How many annual leave hours carry over?")
    panel.get_by_role("button", name="Ask").click()

    expect(panel.get_by_text("Up to 240 hours carry over")).to_be_visible()
    expect(panel.get_by_role("link", name="[1]")).to_be_visible()


def test_an_expired_token_on_the_page_is_replaced_from_the_intranets_token_url(page: Page, live_portal, intranets, widget):
    allowed, _ = intranets
    allowed.pages["/lantern-token"] = json.dumps({"token": widget.token("tess", [])})
    expired = widget.token("tess", [], lifetime_seconds=600, now=time.time() - 3600)
    page.goto(intranet_page(allowed, live_portal, widget, token=expired, token_url="/lantern-token", name="/expired.html"))

    panel = open_panel(page)

    expect(panel.get_by_text("Asking as tess.")).to_be_visible()
    expect(panel.get_by_role("button", name="Ask")).to_be_enabled()
