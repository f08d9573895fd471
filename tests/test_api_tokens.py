"""Personal API tokens as their owner and an admin meet them: the tokens page, the secret shown once, what is stored,
revoking, and a token opening the JSON API (with the browser session's CSRF rule beside it)."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.test import Client

from accounts.models import ApiToken

from .api_flows import API, bearer, employee, fresh_rate_counters, post_json, token_for  # noqa: F401

TOKENS_PAGE = "/accounts/tokens/"


@pytest.fixture
def signed_in(client, employee):  # noqa: F811
    client.force_login(employee)
    return client


def created_secret(response) -> str:
    return re.search(r'id="new-token" value="([^"]+)"', response.content.decode()).group(1)


def test_a_new_token_is_shown_once_on_the_page_that_creates_it(signed_in):
    response = signed_in.post(TOKENS_PAGE, {"name": "nightly upload"})
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    secret = created_secret(response)
    assert secret.startswith("lnt_") and len(secret) > 40
    assert "shown only this once" in response.content.decode()

    later = signed_in.get(TOKENS_PAGE).content.decode()
    assert "nightly upload" in later and secret[:12] in later
    assert secret not in later


def test_only_a_sha256_of_the_secret_and_its_first_characters_are_stored(signed_in):
    secret = created_secret(signed_in.post(TOKENS_PAGE, {"name": "reporting"}))
    token = ApiToken.objects.get(name="reporting")
    assert token.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert token.prefix == secret[:12]
    stored = [str(value) for value in ApiToken.objects.values_list().get(pk=token.pk)]
    assert secret not in stored


def test_a_token_calls_the_api_as_its_owner_and_records_its_last_use(signed_in, employee):  # noqa: F811
    secret = created_secret(signed_in.post(TOKENS_PAGE, {"name": "script"}))
    response = Client().get(f"{API}/conversations", headers=bearer(secret))
    assert response.status_code == 200 and response.json() == {"count": 0, "items": []}
    assert ApiToken.objects.get(user=employee).last_used_at is not None


def test_a_token_without_a_name_is_refused_with_a_message(signed_in):
    response = signed_in.post(TOKENS_PAGE, {"name": "   "})
    assert response.status_code == 400
    assert "Give the token a name" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_a_revoked_token_is_refused_by_the_api_from_the_next_request(signed_in):
    secret = created_secret(signed_in.post(TOKENS_PAGE, {"name": "old script"}))
    token = ApiToken.objects.get(name="old script")
    assert Client().get(f"{API}/collections", headers=bearer(secret)).status_code == 200

    page = signed_in.post(f"/accounts/tokens/{token.pk}/revoke", follow=True).content.decode()
    assert "is revoked" in page and "revoked" in page

    response = Client().get(f"{API}/collections", headers=bearer(secret))
    assert response.status_code == 401
    assert "not valid" in response.json()["detail"]


def test_someone_elses_token_cannot_be_revoked_or_seen(signed_in, django_user_model):
    carol = django_user_model.objects.create_user("carol", password="pw-carol-1234")
    secret = token_for(carol)
    token = ApiToken.objects.get(user=carol)
    assert token.prefix not in signed_in.get(TOKENS_PAGE).content.decode()
    assert signed_in.post(f"/accounts/tokens/{token.pk}/revoke").status_code == 404
    assert Client().get(f"{API}/collections", headers=bearer(secret)).status_code == 200


def test_the_tokens_page_needs_a_signed_in_user(client, db):
    response = client.get(TOKENS_PAGE)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_tokens_page_is_a_labelled_form_reachable_from_the_navigation(signed_in):
    page = signed_in.get("/chat/").content.decode()
    assert f'href="{TOKENS_PAGE}">API tokens</a>' in page
    page = signed_in.get(TOKENS_PAGE).content.decode()
    assert '<label for="token-name">Name</label>' in page and 'id="token-name" name="name"' in page
    assert '<button type="submit" class="primary">Create token</button>' in page


def test_a_token_of_a_deactivated_user_stops_working(employee):  # noqa: F811
    secret = token_for(employee)
    employee.is_active = False
    employee.save()
    assert Client().get(f"{API}/collections", headers=bearer(secret)).status_code == 401


def test_a_mistyped_token_gets_401_with_a_message_and_no_session_fallback(client, employee):  # noqa: F811
    client.force_login(employee)
    response = client.get(f"{API}/collections", headers=bearer("lnt_not-a-real-token"))
    assert response.status_code == 401
    assert response.json()["detail"].startswith("The API token is not valid")


def test_admins_see_tokens_in_the_admin_and_can_revoke_but_not_create_them(employee, django_user_model):  # noqa: F811
    secret = token_for(employee)
    admin = django_user_model.objects.create_superuser("root", password="pw-root-12345")
    client = Client()
    client.force_login(admin)
    listing = client.get("/admin/accounts/apitoken/").content.decode()
    assert secret[:12] in listing and secret not in listing
    assert client.get("/admin/accounts/apitoken/add/").status_code == 403
    token = ApiToken.objects.get(user=employee)
    client.post("/admin/accounts/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    assert Client().get(f"{API}/collections", headers=bearer(secret)).status_code == 401


# --- Session and CSRF ----------------------------------------------------------------------------------------------


@pytest.fixture
def browser(employee):  # noqa: F811
    """A signed-in browser: Django's CSRF protection on, its csrftoken cookie set by a page with a form."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(employee)
    client.get(TOKENS_PAGE)
    return client


def test_a_browser_session_reads_without_a_csrf_token(browser):
    assert browser.get(f"{API}/conversations").status_code == 200


def test_a_browser_session_needs_the_csrf_token_for_unsafe_methods(browser):
    response = post_json(browser, "/messages/1/feedback", {"helpful": True})
    assert response.status_code == 403
    assert response.json()["detail"].startswith("CSRF check failed")


def test_a_browser_session_with_the_csrf_header_gets_past_the_check(browser):
    response = post_json(
        browser, "/messages/1/feedback", {"helpful": True}, **{"X-CSRFToken": browser.cookies["csrftoken"].value}
    )
    assert response.status_code == 404  # checked, authenticated, and then: no such answer of theirs


def test_a_token_needs_no_csrf_token(employee):  # noqa: F811
    client = Client(enforce_csrf_checks=True)
    response = post_json(client, "/messages/1/feedback", {"helpful": True}, **bearer(token_for(employee)))
    assert response.status_code == 404


def test_without_a_session_or_token_the_api_answers_401_with_how_to_authenticate(client, db):
    response = client.get(f"{API}/conversations")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "Authorization: Bearer <token>" in response.json()["detail"]
