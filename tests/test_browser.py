"""What a person sees in a real browser: Debian's chromium driving a live portal (fixtures in tests/browser.py).

Tests find things the way a person does: by visible text, roles and labels. The portal is shared by the module, so
each test uploads its own file contents into its own collection.
"""

import re

import pytest
from playwright.sync_api import Locator, Page, expect

pytest_plugins = ["tests.browser"]
pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The portal's first upload also loads the embedding model; later ones take a second or two.
INDEXED_WITHIN_MS = 180_000


def markdown_file(name: str, title: str, text: str) -> dict:
    return {"name": name, "mimeType": "text/markdown", "buffer": f"# {title}\n\n{text}\n".encode()}


def document_row(page: Page, file_name: str):
    return page.get_by_role("row").filter(has_text=file_name)


def tab_to(page: Page, target: Locator, *, presses: int = 30) -> None:
    """Press Tab until `target` has the keyboard focus; fail with the focus order seen if it never gets it."""
    seen: list[str] = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        if target.evaluate("element => element === document.activeElement"):
            return
        seen.append(page.evaluate(_DESCRIBE_FOCUS))
    raise AssertionError(f"{target} never got the focus in {presses} presses of Tab; the focus went: {seen}")


_DESCRIBE_FOCUS = """() => {
  const el = document.activeElement;
  const name = (el.getAttribute('aria-label') || el.labels?.[0]?.textContent || el.textContent || el.value || '').trim();
  return `${el.tagName.toLowerCase()} "${name.replace(/\\s+/g, ' ').slice(0, 40)}"`;
}"""


def test_uploading_a_file_in_the_browser_shows_it_indexed(signed_in_page: Page):
    page = signed_in_page
    page.goto("/upload/")
    page.get_by_label("or create a new collection").fill("Travel")
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Choose File", exact=True).click()
    chooser.value.set_files(markdown_file("travel.md", "Travel", "Flights under six hours are booked in economy class."))
    expect(page.get_by_role("listitem").filter(has_text="travel.md")).to_be_visible()
    page.get_by_role("button", name="Upload 1 file(s)").click()

    expect(page.get_by_role("heading", name="Documents", level=1)).to_be_visible()
    expect(document_row(page, "travel.md").get_by_text("Indexed", exact=True)).to_be_visible(timeout=INDEXED_WITHIN_MS)
    progress = page.get_by_role("progressbar")
    expect(progress).to_have_attribute("aria-valuenow", "100")
    expect(progress).to_have_text("100%")


def test_the_upload_page_can_be_used_with_the_keyboard_alone(signed_in_page: Page):
    page = signed_in_page
    page.goto("/upload/")
    tab_to(page, page.get_by_label("or create a new collection"))
    page.keyboard.type("Expenses")
    tab_to(page, page.get_by_role("button", name=re.compile(r"^Drop files or a folder here")))
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    chooser.value.set_files(markdown_file("expenses.md", "Expenses", "Receipts are filed within thirty days."))
    tab_to(page, page.get_by_role("button", name="Upload 1 file(s)"))
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Documents", level=1)).to_be_visible()
    expect(document_row(page, "expenses.md").get_by_text("Indexed", exact=True)).to_be_visible(timeout=INDEXED_WITHIN_MS)
