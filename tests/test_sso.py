"""Single sign-on with OpenID Connect, against a real provider on localhost (tests/oidc_provider.py).

The browser's part is played by Django's test client (the portal) and requests (the provider): the portal's OIDC
client really fetches discovery, exchanges the code, checks the RS256 token against the JWKS and reads userinfo.
"""

import json
from urllib.parse import urlsplit

import pytest
import requests
from django.contrib.auth.models import Group

from audit.models import AuditEvent
from kb.models import Collection
from kb.selectors import collections_readable
from tests.oidc_provider import OIDCProvider

pytestmark = pytest.mark.django_db

GROUP_MAP = {"hr-staff": "HR", "engineering": ["Engineering", "Staff"]}
ERIN = {"sub": "u-erin", "email": "erin@example.com", "preferred_username": "erin", "given_name": "Erin"}


@pytest.fixture
def provider():
    with OIDCProvider(client_id="lantern", client_secret="client-secret-1") as running:
        yield running


@pytest.fixture
def sso(settings, provider):
    settings.OIDC_RP_CLIENT_ID = "lantern"
    settings.OIDC_RP_CLIENT_SECRET = "client-secret-1"
    settings.OIDC_OP_ISSUER = provider.root_url
    settings.OIDC_ENABLED = True
    settings.OIDC_PROVIDER_NAME = "Corp ID"
    settings.OIDC_GROUP_MAP = json.dumps(GROUP_MAP)
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend", "accounts.oidc.OIDCBackend"]
    return provider


def sign_in(client, provider, claims):
    """The browser's round trip: portal -> provider -> portal with a code. Returns the portal's last response."""
    provider.next_login = claims
    start = client.get("/oidc/authenticate/", {"next": "/chat/"})
    assert start.status_code == 302 and start["Location"].startswith(provider.root_url + "/authorize?")
    at_provider = requests.get(start["Location"], allow_redirects=False, timeout=10)
    assert at_provider.status_code == 302, at_provider.text
    back = urlsplit(at_provider.headers["Location"])
    assert back.path == "/oidc/callback/"
    return client.get(f"{back.path}?{back.query}", follow=True)


def signed_in_name(client) -> str | None:
    response = client.get("/chat/")
    return response.context["user"].username if response.status_code == 200 else None


def test_the_sign_in_page_has_no_provider_button_while_sso_is_not_configured(client):
    page = client.get("/accounts/login/")

    assert b"Sign in with" not in page.content
    assert client.get("/oidc/authenticate/").status_code == 404


def test_the_sign_in_page_offers_a_button_for_the_configured_provider(client, sso):
    page = client.get("/accounts/login/?next=/chat/")

    assert b'href="/oidc/authenticate/?next=/chat/">Sign in with Corp ID</a>' in page.content


def test_signing_in_through_the_provider_creates_the_user_with_the_mapped_groups(client, sso):
    response = sign_in(client, sso, {**ERIN, "groups": ["hr-staff", "unmapped-team"]})

    assert response.redirect_chain[-1][0] == "/chat/"
    assert signed_in_name(client) == "erin"
    user = response.context["user"]
    assert user.email == "erin@example.com" and user.first_name == "Erin"
    assert set(user.groups.values_list("name", flat=True)) == {"HR"}
    assert sso.token_requests[0]["code_verifier"]  # PKCE was used


def test_the_next_sign_in_sets_the_groups_to_what_the_claim_now_says_and_keeps_hand_given_ones(client, sso):
    sign_in(client, sso, {**ERIN, "groups": ["hr-staff"]})
    client.logout()
    erin = Group.objects.get(name="HR").user_set.get()
    erin.groups.add(Group.objects.create(name="Volunteers"))  # given in the admin; the map does not name it

    sign_in(client, sso, {**ERIN, "groups": ["engineering"]})

    erin.refresh_from_db()
    assert set(erin.groups.values_list("name", flat=True)) == {"Engineering", "Staff", "Volunteers"}


def test_losing_a_group_at_the_provider_closes_its_collections_at_the_next_sign_in(client, sso):
    hr = Collection.objects.create(name="HR files", slug="hr-files", access=Collection.Access.GROUPS)
    hr.groups.add(Group.objects.create(name="HR"))
    sign_in(client, sso, {**ERIN, "groups": ["hr-staff"]})
    erin = Group.objects.get(name="HR").user_set.get()
    assert hr.pk in collections_readable(user=erin)
    client.logout()

    sign_in(client, sso, {**ERIN})  # no groups claim at all

    erin.refresh_from_db()
    assert hr.pk not in collections_readable(user=erin)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("bad_signature", "the identity token's signature does not match the provider's keys."),
        ("wrong_audience", "the identity token was issued for another application (wrong audience)."),
        ("expired", "the identity token has expired."),
    ],
)
def test_a_bad_identity_token_is_refused_with_a_message_saying_why(client, sso, django_user_model, fault, reason):
    sso.token_fault = fault

    response = sign_in(client, sso, {**ERIN, "groups": ["hr-staff"]})

    assert response.redirect_chain[-1][0] == "/accounts/login/"
    messages = [str(m) for m in response.context["messages"]]
    assert len(messages) == 1 and messages[0].startswith(f"Sign-in with Corp ID was refused: {reason}")
    assert signed_in_name(client) is None
    assert not django_user_model.objects.filter(username="erin").exists()
    refusal = AuditEvent.objects.get(action=AuditEvent.Action.LOGIN_FAILED)
    assert refusal.detail["sso"].startswith(reason) and refusal.via == AuditEvent.Via.SSO


def test_a_sign_in_through_the_provider_is_in_the_audit_log(client, sso):
    sign_in(client, sso, {**ERIN, "groups": ["hr-staff"]})

    (login,) = AuditEvent.objects.filter(action=AuditEvent.Action.LOGIN)
    assert login.actor_name == "erin" and login.via == AuditEvent.Via.SSO
    assert login.detail["backend"] == "accounts.oidc.OIDCBackend"


def test_username_and_password_still_work_while_sso_is_on(client, sso, django_user_model):
    django_user_model.objects.create_user("olga", password="pw-olga-12345")

    client.post("/accounts/login/", {"username": "olga", "password": "pw-olga-12345"})

    assert signed_in_name(client) == "olga"


def test_a_group_map_that_is_not_json_is_reported_on_the_sign_in_page(client, sso, settings, django_user_model):
    settings.OIDC_GROUP_MAP = "hr-staff=HR"

    response = sign_in(client, sso, {**ERIN, "groups": ["hr-staff"]})

    (message,) = [str(m) for m in response.context["messages"]]
    assert "single sign-on is misconfigured (OIDC_GROUP_MAP is not valid JSON" in message
    assert signed_in_name(client) is None
    assert not django_user_model.objects.filter(username="erin").exists()


def test_a_provider_user_whose_email_is_not_verified_is_refused(client, sso, django_user_model):
    django_user_model.objects.create_superuser("erin", email="erin@example.com", password="pw-local-12345")

    response = sign_in(client, sso, {**ERIN, "email_verified": False})

    (message,) = [str(m) for m in response.context["messages"]]
    assert message == "Sign-in with Corp ID was refused: the provider has not verified this email address."
    assert signed_in_name(client) is None


def test_a_provider_user_named_like_a_local_account_gets_an_account_of_their_own(client, sso, django_user_model):
    local = django_user_model.objects.create_superuser("erin", email="erin.local@example.com", password="pw-12345678")

    sign_in(client, sso, {**ERIN, "groups": ["hr-staff"]})
    client.logout()
    response = sign_in(client, sso, {**ERIN, "groups": ["hr-staff"]})  # found again by email, not made twice

    user = response.context["user"]
    assert user.username.startswith("erin-") and user.email == "erin@example.com" and not user.is_superuser
    assert django_user_model.objects.count() == 2
    assert local.groups.count() == 0
