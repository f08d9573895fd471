"""What the chat page renders in a real browser from text it does not control: a document's and the model's.

Markdown becomes formatting, [n] becomes a link to passage n, and any HTML or script in a document or an answer
stays visible text that never runs, streamed or reloaded. (The main chat flow is in tests/test_browser.py.)
"""

import re

import pytest
from playwright.sync_api import Page, expect

pytest_plugins = ["tests.browser"]
pytestmark = [pytest.mark.browser, pytest.mark.slow]

INDEXED_WITHIN_MS = 180_000
HOSTILE_DOCUMENT = (
    "# Badges\n\nVisitors wear a red badge at all times. <script>window.pwned = 'document script'</script>"
    ' <img src="x" onerror="window.pwned = \'document image\'">\n'
)
HOSTILE_ANSWER = (
    "## Badge rules\n\n"
    "Visitors wear a **red badge** at all times [1]. Contractors get a `blue` badge [1].\n\n"
    "- first point <img src=x onerror=\"window.pwned = 'answer image'\">\n"
    "- second point\n\n"
    "```\n<script>window.pwned = 'answer script'</script>\n```\n\n"
    "[a trap](javascript:window.pwned='answer link') and [the intranet](https://intranet.example.com/badges)"
)


def upload(page: Page, *, collection: str, name: str, text: str) -> None:
    page.goto("/upload/")
    page.get_by_label("or create a new collection").fill(collection)
    with page.expect_file_chooser() as chooser:
        page.get_by_label("Files to upload").click()
    chooser.value.set_files({"name": name, "mimeType": "text/markdown", "buffer": text.encode()})
    page.get_by_role("button", name="Upload 1 file(s)").click()
    row = page.get_by_role("row").filter(has_text=name)
    expect(row.get_by_text("Indexed", exact=True)).to_be_visible(timeout=INDEXED_WITHIN_MS)


def assert_nothing_ran(page: Page) -> None:
    assert page.evaluate("window.pwned === undefined"), page.evaluate("window.pwned")


def test_html_in_documents_and_answers_is_shown_as_text_and_never_runs(signed_in_page: Page, portal_llm):
    page = signed_in_page
    upload(page, collection="Security", name="badges.md", text=HOSTILE_DOCUMENT)
    portal_llm.add_replies(HOSTILE_ANSWER)
    page.goto("/chat/")
    page.get_by_label("Ask a question").fill("What badge do visitors wear?")
    page.get_by_label("Ask a question").press("Enter")  # Enter sends

    turn = page.get_by_role("article").filter(has_text="What badge do visitors wear?")
    expect(turn.get_by_role("link", name="[1]").first).to_be_visible()
    for view in ("streamed", "reloaded"):
        answer = turn.locator(".answer-text")
        expect(answer.get_by_role("heading", name="Badge rules")).to_be_visible()
        expect(answer.locator("strong")).to_have_text("red badge")
        expect(answer.locator("code").first).to_have_text("blue")
        expect(answer.get_by_role("listitem")).to_have_count(2)
        expect(answer).to_contain_text("<img src=x onerror=")  # shown, as text
        expect(answer.locator("pre")).to_have_text("<script>window.pwned = 'answer script'</script>")
        expect(answer.get_by_role("link", name="a trap")).to_have_count(0)
        expect(answer.get_by_role("link", name="the intranet")).to_have_attribute("href", "https://intranet.example.com/badges")
        expect(answer.get_by_role("link", name="[1]")).to_have_count(2)
        expect(turn.get_by_role("listitem").filter(has_text="Visitors wear a red badge")).to_contain_text("<script>")
        assert turn.locator("img, script, iframe").count() == 0, view
        assert_nothing_ran(page)
        page.reload()  # the stored answer is rendered by the same code

    page.get_by_role("article").first.get_by_role("link", name="[1]").first.click()
    expect(page).to_have_url(re.compile(r"/passages/\d+/"))
    expect(page.locator("mark")).to_contain_text("<script>window.pwned = 'document script'</script>")
    assert_nothing_ran(page)


def test_an_unverified_citation_is_marked_with_a_tooltip(signed_in_page: Page, portal_llm):
    page = signed_in_page
    upload(page, collection="Canteen", name="canteen.md", text="# Canteen\n\nLunch is served from noon to two.\n")
    # The passage says nothing of parking, so the citation checker cannot verify this sentence.
    portal_llm.add_replies("Parking permits for bicycles cost 45 euros a year [1].")
    page.goto("/chat/")
    page.get_by_label("Ask a question").fill("When is lunch served in the canteen?")
    page.get_by_role("button", name="Ask").click()

    citation = page.get_by_role("article").get_by_role("link", name="[1]")
    expect(citation).to_have_attribute("title", "not verified against the passage")
    expect(citation).to_have_class(re.compile(r"\bunverified\b"))
