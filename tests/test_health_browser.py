"""The content health page in a real browser (Debian's chromium, fixtures in tests/browser.py): an admin uploads a
document with an owner and a past review date, asks, rates an answer down, then reads every panel. Screenshots go to
test-artifacts/health/ (git-ignored); the test prints where."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytest_plugins = ["tests.browser"]
pytestmark = [pytest.mark.browser, pytest.mark.slow]

INDEXED_WITHIN_MS = 180_000
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "health"
POLICY = "Bicycles may be parked in the basement racks; e-bikes charge on level minus two."
NOTHING_MATCHES = "Which football club won the 1998 World Cup final?"


def upload_with_owner(page: Page, *, owner: str) -> None:
    page.goto("/upload/")
    page.get_by_label("or create a new collection").fill("Facilities")
    page.get_by_label("Owner").fill(owner)
    page.get_by_label("Review by").fill("2026-01-15")
    with page.expect_file_chooser() as chooser:
        page.get_by_label("Files to upload").click()
    chooser.value.set_files({"name": "bicycles.md", "mimeType": "text/markdown", "buffer": f"# Bicycles\n\n{POLICY}\n".encode()})
    page.get_by_role("button", name="Upload 1 file(s)").click()
    row = page.get_by_role("row").filter(has_text="bicycles.md")
    expect(row.get_by_text("Indexed", exact=True)).to_be_visible(timeout=INDEXED_WITHIN_MS)


def ask_in_chat(page: Page, question: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Chat").click()
    page.get_by_label("Ask a question").fill(question)
    page.get_by_role("button", name="Ask").click()
    expect(page.get_by_role("article").filter(has_text=question).locator(".answer-tools")).to_be_visible()


def shot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    print(f"screenshot: {path}")
    return path


def test_an_admin_reads_the_content_health_page_after_real_questions_and_ratings(signed_in_page: Page, portal_llm, live_portal):
    page = signed_in_page
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and not m.location.get("url", "").endswith("/favicon.ico") and errors.append(m.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    upload_with_owner(page, owner=live_portal.admin_username)
    portal_llm.add_replies("E-bikes charge on level minus three [1].")
    ask_in_chat(page, "Where do e-bikes charge?")
    turn = page.get_by_role("article").filter(has_text="Where do e-bikes charge?")
    turn.get_by_role("button", name="Not helpful").click()
    turn.get_by_label("Comment (optional)").fill("It says minus two in the policy")
    turn.get_by_role("button", name="Send comment").click()
    expect(turn.get_by_text("your comment was saved")).to_be_visible()
    ask_in_chat(page, NOTHING_MATCHES)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Content health").click()
    expect(page.get_by_role("heading", name="Content health", level=1)).to_be_visible()
    questions_chart = page.locator('figure[data-chart="questions"]')
    expect(questions_chart).to_have_attribute("data-drawn", "true")
    expect(questions_chart.get_by_role("img", name=re.compile("questions per day"))).to_be_visible()
    expect(questions_chart.get_by_text("The numbers")).to_be_visible()  # the table stays one click away
    shot(page, "overview")

    health_nav = page.get_by_role("navigation", name="Content health")
    health_nav.get_by_role("link", name="Knowledge gaps").click()
    expect(page.get_by_role("heading", name=NOTHING_MATCHES, level=3)).to_be_visible()
    expect(page.get_by_text("It says minus two in the policy")).to_be_visible()
    shot(page, "gaps")

    health_nav.get_by_role("link", name="Feedback").click()
    page.get_by_label("Rating", exact=True).select_option("not_helpful")
    page.get_by_role("button", name="Filter").click()
    rated = page.get_by_role("article").filter(has_text="Where do e-bikes charge?")
    expect(rated.get_by_text("E-bikes charge on level minus three")).to_be_visible()
    expect(rated.get_by_role("link", name="Bicycles")).to_be_visible()
    shot(page, "feedback")

    health_nav.get_by_role("link", name="Documents").click()
    expect(page.get_by_role("row").filter(has_text="Bicycles")).to_contain_text("Facilities")

    health_nav.get_by_role("link", name="Reviews").click()
    expect(page.get_by_role("row").filter(has_text="Bicycles")).to_contain_text("overdue")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="My reviews").click()
    expect(page.get_by_role("row").filter(has_text="Bicycles")).to_contain_text("15 Jan 2026")
    assert errors == []


def test_the_health_pages_fit_a_narrow_phone_screen(signed_in_page: Page):
    page = signed_in_page
    page.set_viewport_size({"width": 360, "height": 800})
    for path in ("/health/", "/health/gaps/", "/health/feedback/", "/health/documents/", "/health/reviews/"):
        page.goto(path)
        expect(page.get_by_role("heading", name="Content health", level=1)).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, f"{path} scrolls sideways"
    page.goto("/health/")
    shot(page, "overview-360px")
