"""The API's pages in a real browser against a live portal: the interactive docs render from the portal's own files
under its Content-Security-Policy, and the API tokens page works with the keyboard alone on a 360 px screen."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import Page, expect

pytest_plugins = ["tests.browser"]
pytestmark = [pytest.mark.browser, pytest.mark.slow]


def api_status(portal_url: str, path: str, token: str) -> int:
    request = urllib.request.Request(portal_url.rstrip("/") + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            json.load(response)
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_api_docs_render_every_endpoint_from_the_portal_alone(signed_in_page: Page, live_portal):
    problems: list[str] = []
    signed_in_page.on("console", lambda message: message.type in ("error", "warning") and problems.append(message.text))
    outside: list[str] = []
    signed_in_page.on("request", lambda request: not request.url.startswith(live_portal.url) and outside.append(request.url))

    signed_in_page.goto("/api/v1/docs")
    # Swagger UI's bundle is 1.5 MB of JavaScript: on a busy machine it takes a while to start.
    expect(signed_in_page.get_by_role("heading", name="Lantern API")).to_be_visible(timeout=60_000)
    expect(signed_in_page.locator(".opblock-summary-path", has_text="/api/v1/ask")).to_be_visible()
    assert signed_in_page.locator(".opblock").count() >= 10
    assert outside == []
    assert problems == []  # a Content-Security-Policy violation would be reported here


def test_a_token_is_created_used_and_revoked_with_the_keyboard_on_a_small_screen(signed_in_page: Page, live_portal):
    page = signed_in_page
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto("/accounts/tokens/")
    for _ in range(30):  # Tab through the page, as a keyboard user does, to the name field
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "token-name":
            break
    else:
        pytest.fail("the token name field is not reachable with Tab")
    page.keyboard.type("keyboard script")
    page.keyboard.press("Enter")

    new_token = page.get_by_label("Your new token")
    expect(new_token).to_be_focused()
    secret = new_token.input_value()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert api_status(live_portal.url, "/api/v1/collections", secret) == 200

    page.goto("/accounts/tokens/")
    revoke = page.get_by_role("button", name="Revoke the token keyboard script")
    revoke.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("is revoked")).to_be_visible()
    assert api_status(live_portal.url, "/api/v1/collections", secret) == 401
