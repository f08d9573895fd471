"""Content health checks in a real browser (fixtures in tests/browser.py): the golden question source picker used
with the keyboard alone, and conflicting documents uploaded through the page shown side by side on a phone-wide
screen, one of them retired. Each test saves a screenshot of what it saw under test-artifacts/browser/<test name>/."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.helpers import wait_for
from tests.test_browser import INDEXED_WITHIN_MS, document_row, markdown_file, tab_to, upload_through_the_page

pytest_plugins = ["tests.browser"]
pytestmark = [pytest.mark.browser, pytest.mark.slow]


ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "test-artifacts" / "browser"


def screenshot(page: Page, request, name: str) -> None:
    folder = SCREENSHOTS / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=folder / name, full_page=True)
    print(f"screenshot: {folder / name}")


def upload_and_wait(page: Page, *, collection: str, name: str, title: str, text: str) -> None:
    upload_through_the_page(page, collection=collection, file=markdown_file(name, title, text))
    expect(document_row(page, name)).to_contain_text("Indexed", timeout=INDEXED_WITHIN_MS)


def test_a_golden_question_is_recorded_with_the_source_picker_using_the_keyboard_alone(signed_in_page: Page, request):
    page = signed_in_page
    upload_and_wait(page, collection="Golden picker", name="overtime-pay.md", title="Overtime rules",
                    text="Overtime is paid at 150 percent of the hourly rate after 40 hours in a week.")
    page.goto("/health/golden/new/")

    page.get_by_role("textbox", name="Question", exact=True).fill("How is overtime paid?")
    search = page.get_by_label("Find the document (title or file name)")
    search.focus()
    page.keyboard.type("overtime")
    document = page.get_by_role("radio", name=re.compile("overtime-pay.md"))
    expect(document).to_be_visible()
    page.keyboard.press("ArrowDown")
    expect(document).to_be_focused()
    page.keyboard.press("Space")
    expect(document).to_be_checked()
    passage = page.get_by_role("radio", name=re.compile("150 percent"))
    expect(passage).to_be_visible()
    page.keyboard.press("Tab")  # into the passages: "Any passage" is checked
    page.keyboard.press("ArrowDown")
    expect(passage).to_be_checked()
    tab_to(page, page.get_by_label("Reference answer"))
    page.keyboard.type("150 percent")
    tab_to(page, page.get_by_role("button", name="Save golden question"))
    page.keyboard.press("Enter")

    expect(page.get_by_text("Golden question added")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="How is overtime paid?")
    expect(row).to_contain_text("Overtime rules")
    expect(row).to_contain_text("150 percent")
    screenshot(page, request, "golden.png")


def test_conflicting_uploads_are_shown_side_by_side_on_a_narrow_screen(signed_in_page: Page, request):
    page = signed_in_page
    upload_and_wait(page, collection="Conflicts", name="expenses-2024.md", title="Expense rules",
                    text="Meals on business trips are refunded up to 45 euros a day with a receipt.")
    upload_and_wait(page, collection="Conflicts", name="expenses-2025.md", title="Expense rules",
                    text="Meals on business trips are refunded up to 60 euros a day with a receipt.")
    page.set_viewport_size({"width": 360, "height": 800})

    def conflict_shown() -> bool:  # the check runs in the portal's worker after each indexing
        page.goto("/health/duplicates/")
        return page.locator("mark", has_text="60").count() > 0

    wait_for(conflict_shown, timeout=120, interval=1, message="the conflict on the duplicates page")
    conflict = page.get_by_role("article", name=re.compile("Conflict"))
    expect(conflict.locator("mark", has_text="45")).to_be_visible()
    expect(conflict.locator("mark", has_text="60")).to_be_visible()
    expect(conflict.get_by_text("Retire this document…")).to_have_count(2)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    screenshot(page, request, "duplicates-360px.png")

    conflict.get_by_text("Retire this document…").last.click()
    conflict.get_by_role("button", name=re.compile("Retire")).click()  # the one just revealed
    expect(page.get_by_text("was retired")).to_be_visible()
    expect(page.get_by_text("No conflicting passages found.")).to_be_visible()


def test_evaluate_golden_hands_the_run_to_the_running_portal_and_follows_it(signed_in_page: Page, live_portal, portal_llm):
    page = signed_in_page
    upload_and_wait(page, collection="Badges", name="badges.md", title="Badge rules",
                    text="A lost badge is replaced at the front desk for 10 euros.")
    page.goto("/health/golden/new/")
    page.get_by_role("textbox", name="Question", exact=True).fill("What does a new badge cost?")
    page.get_by_label("Find the document (title or file name)").fill("badge")
    page.get_by_role("radio", name=re.compile("badges.md")).check()
    page.get_by_label("Reference answer").fill("10 euros")
    page.get_by_role("button", name="Save golden question").click()
    expect(page.get_by_text("Golden question added")).to_be_visible()
    # The portal holds the embedded vector store, so the command cannot search itself: it queues the run for the
    # portal's worker and follows it through the database. It runs with the portal's own settings.
    environ = Path(f"/proc/{live_portal.process.pid}/environ").read_bytes().decode()
    env = dict(item.split("=", 1) for item in environ.split("\0") if "=" in item)
    log_offset = live_portal.log_size()
    portal_llm.default_reply = "A new badge costs 10 euros [1]."
    try:
        finished = subprocess.run([sys.executable, "manage.py", "evaluate", "--golden", "--json"], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=300)
    finally:
        portal_llm.default_reply = "OK"

    assert finished.returncode == 0, finished.stderr[-3000:]
    report = json.loads(finished.stdout)
    [badge] = [r for r in report["results"] if r["question"] == "What does a new badge cost?"]
    assert badge["recall"] == 1.0 and badge["correct"] is True
    assert "health.run_golden_questions" in live_portal.log_since(log_offset)
