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


def upload_through_the_page(page: Page, *, collection: str, file: dict) -> None:
    """Upload one file into a new collection with the upload page, and arrive on the documents page."""
    page.goto("/upload/")
    page.get_by_label("or create a new collection").fill(collection)
    with page.expect_file_chooser() as chooser:
        page.get_by_label("Files to upload").click()
    chooser.value.set_files(file)
    expect(page.get_by_role("listitem").filter(has_text=file["name"])).to_be_visible()
    page.get_by_role("button", name="Upload 1 file(s)").click()
    expect(page.get_by_role("heading", name="Documents", level=1)).to_be_visible()


def test_uploading_a_file_in_the_browser_shows_it_indexed(signed_in_page: Page):
    page = signed_in_page
    upload_through_the_page(page, collection="Travel", file=markdown_file("travel.md", "Travel", "Flights under six hours are booked in economy class."))

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


def test_asking_a_question_streams_a_cited_answer_and_the_citation_opens_the_passage(signed_in_page: Page, portal_llm):
    page = signed_in_page
    policy = "Employees receive sixteen weeks of paid parental leave, to be taken within the first year."
    upload_through_the_page(page, collection="People", file=markdown_file("parental-leave.md", "Parental leave", policy))
    expect(document_row(page, "parental-leave.md").get_by_text("Indexed", exact=True)).to_be_visible(timeout=INDEXED_WITHIN_MS)
    portal_llm.add_replies("Employees receive sixteen weeks of paid parental leave [1].")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Chat").click()
    question = "How many weeks of parental leave do employees get?"
    page.get_by_label("Ask a question").fill(question)
    turn = page.get_by_role("article").filter(has_text=question)
    with portal_llm.holding_first_token():  # the sources must show while the model has not yet said a word
        page.get_by_role("button", name="Ask").click()
        expect(turn.get_by_role("heading", name="Sources")).to_be_visible()
        expect(turn.get_by_role("link", name=re.compile("parental leave", re.IGNORECASE))).to_be_visible()
        expect(turn.get_by_text("Writing…")).to_be_visible()
    citation = turn.get_by_role("link", name="[1]")
    expect(citation).to_be_visible()
    expect(turn).to_contain_text("Employees receive sixteen weeks of paid parental leave")
    expect(citation).to_have_accessible_description(re.compile(r"^Source 1: parental leave", re.IGNORECASE))  # verified

    citation.click()
    expect(page).to_have_url(re.compile(r"/passages/\d+/"))
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("parental leave", re.IGNORECASE))
    # <mark> is HTML's "highlighted" element; the page scrolls to it (#passage).
    highlighted = page.get_by_role("region", name="The passage in its context").locator("mark")
    expect(highlighted).to_contain_text(policy)
    expect(highlighted).to_be_in_viewport()
