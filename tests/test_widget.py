"""The embeddable chat widget's endpoints: keys and origins, sign-in tokens, anonymous use, and that every answer
follows the asker's reading rights (documents ingested for real, answers from a FakeLLM)."""

import json
import re
import time

import jwt
import pytest
from django.contrib.auth.models import Group
from django.test import Client

from chat.models import Conversation, WidgetKey
from demo.mint_token import mint_token
from kb.models import Collection
from tests.fake_llm import FakeLLM
from tests.helpers import markdown, upload_and_process

pytestmark = pytest.mark.django_db

INTRANET = "https://intranet.example.com"
ELSEWHERE = "https://elsewhere.example.net"

LEAVE = markdown(
    "Leave policy",
    ("Annual leave", "You can carry over a maximum of 240 annual leave hours into the next leave year."),
)
SALARIES = markdown(
    "Salary bands 2026",
    ("Engineering", "The salary band for senior engineers runs from 91,000 to 118,000 euros a year."),
)
CAFETERIA = markdown(
    "Cafeteria opening hours",
    ("Hours", "The cafeteria on the ground floor is open from 8:00 to 15:30 on weekdays."),
)


@pytest.fixture
def widget_key(db):
    return WidgetKey.objects.create(name="Intranet", allowed_origins=[INTRANET])


@pytest.fixture
def handbook(db):
    """Open to everyone signed in."""
    collection = Collection.objects.create(name="Handbook", slug="handbook")
    upload_and_process(collection, ("leave.md", LEAVE))
    return collection


@pytest.fixture
def payroll(db):
    """Readable by the payroll group only."""
    collection = Collection.objects.create(name="Payroll", slug="payroll", access=Collection.Access.GROUPS)
    collection.groups.add(Group.objects.create(name="payroll"))
    upload_and_process(collection, ("salaries.md", SALARIES))
    return collection


@pytest.fixture
def public_info(db):
    collection = Collection.objects.create(name="Visitors", slug="visitors", public=True)
    upload_and_process(collection, ("cafeteria.md", CAFETERIA))
    return collection


def token_for(widget_key, username="erin", groups=(), **kwargs):
    return mint_token(key=widget_key.key, secret=widget_key.secret, username=username, groups=groups, **kwargs)


def me(client, widget_key, token=None, origin=INTRANET):
    headers = {"Origin": origin} if origin else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return client.get("/widget/me", {"key": widget_key.key}, headers=headers)


def ask(client, widget_key, question, token=None, origin=INTRANET, conversation=None, headers=None):
    headers = dict(headers or {}) | ({"Origin": origin} if origin else {}) | {"Accept": "text/event-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = {"question": question} | ({"conversation": conversation} if conversation else {})
    return client.post(
        f"/widget/ask?key={widget_key.key}", data=json.dumps(body), content_type="application/json", headers=headers
    )


def events_of(response) -> dict[str, dict]:
    assert response.status_code == 200, response.content
    text = b"".join(response.streaming_content).decode()
    events = {}
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events[lines["event"]] = json.loads(lines["data"])
    return events


# --- Tokens ----------------------------------------------------------------------------------------------------------


def test_a_token_asks_as_its_user_created_on_first_use_with_the_tokens_groups(client, widget_key, django_user_model):
    response = me(client, widget_key, token_for(widget_key, "erin", ["payroll", "hr"], email="erin@example.com"))

    assert response.status_code == 200
    assert response.json() == {"via": "token", "name": "erin"}
    erin = django_user_model.objects.get(username="erin")
    assert sorted(erin.groups.values_list("name", flat=True)) == ["hr", "payroll"]
    assert not erin.has_usable_password() and erin.email == "erin@example.com"


def test_the_groups_of_a_token_user_are_those_of_the_latest_token(client, widget_key, django_user_model):
    me(client, widget_key, token_for(widget_key, "erin", ["payroll", "hr"]))
    me(client, widget_key, token_for(widget_key, "erin", ["hr"]))

    assert list(django_user_model.objects.get(username="erin").groups.values_list("name", flat=True)) == ["hr"]


def test_an_expired_token_is_refused(client, widget_key):
    expired = token_for(widget_key, lifetime_seconds=300, now=time.time() - 400)

    response = me(client, widget_key, expired)

    assert response.status_code == 401
    assert response.json()["kind"] == "token_expired" and "expired" in response.json()["error"]


def test_a_token_signed_with_another_secret_is_refused(client, widget_key, django_user_model):
    forged = mint_token(key=widget_key.key, secret="not-the-secret-of-this-widget-key-at-all", username="erin")

    response = me(client, widget_key, forged)

    assert response.status_code == 401
    assert "signature" in response.json()["error"]
    assert not django_user_model.objects.filter(username="erin").exists()


def test_a_token_minted_for_another_widget_key_is_refused(client, widget_key):
    other = WidgetKey.objects.create(name="Other intranet", allowed_origins=[INTRANET])

    response = me(client, widget_key, token_for(other))

    assert response.status_code == 401 and response.json()["kind"] == "token_invalid"


def test_a_token_with_this_keys_secret_but_another_audience_is_refused(client, widget_key):
    wrong_audience = mint_token(key="wk_someone_else", secret=widget_key.secret, username="erin")

    response = me(client, widget_key, wrong_audience)

    assert response.status_code == 401 and "another widget key" in response.json()["error"]


def test_a_token_valid_for_longer_than_the_maximum_lifetime_is_refused(client, widget_key, settings):
    settings.WIDGET_TOKEN_MAX_SECONDS = 3600

    response = me(client, widget_key, token_for(widget_key, lifetime_seconds=2 * 3600))

    assert response.status_code == 401 and "longer than the 3600 s allowed" in response.json()["error"]


def test_a_token_without_an_expiry_is_refused(client, widget_key):
    endless = jwt.encode({"sub": "erin", "aud": widget_key.key, "iat": int(time.time())}, widget_key.secret, algorithm="HS256")

    response = me(client, widget_key, endless)

    assert response.status_code == 401 and "'exp'" in response.json()["error"]


def test_a_token_issued_in_the_future_is_refused(client, widget_key):
    response = me(client, widget_key, token_for(widget_key, now=time.time() + 3600))

    assert response.status_code == 401 and "future" in response.json()["error"]


def test_a_token_cannot_act_for_a_portal_administrator(client, widget_key, django_user_model):
    django_user_model.objects.create_superuser("root", password="pw-root-12345")

    response = me(client, widget_key, token_for(widget_key, "root"))

    assert response.status_code == 403 and response.json()["kind"] == "token_for_admin"


# --- Keys and origins ----------------------------------------------------------------------------------------------


def test_a_request_from_an_origin_the_key_does_not_list_is_refused_without_cors_headers(client, widget_key):
    response = me(client, widget_key, token_for(widget_key), origin=ELSEWHERE)

    assert response.status_code == 403
    assert response.json()["kind"] == "origin_refused"
    assert "Access-Control-Allow-Origin" not in response


def test_the_panels_own_requests_pass_when_a_proxy_hides_the_portals_address(client, widget_key):
    response = client.get(
        "/widget/me", {"key": widget_key.key},
        headers={"Origin": "https://lantern.example.com", "Sec-Fetch-Site": "same-origin", "Authorization": f"Bearer {token_for(widget_key)}"},
    )

    assert response.status_code == 200 and "Access-Control-Allow-Origin" not in response


def test_a_question_from_an_unlisted_origin_is_refused(client, widget_key, fake_llm):
    response = ask(client, widget_key, "How many leave hours carry over?", token_for(widget_key), origin=ELSEWHERE)

    assert response.status_code == 403 and fake_llm.requests == []
    assert not Conversation.objects.exists()


def test_a_listed_origin_gets_cors_headers_on_the_preflight_and_the_response(client, widget_key):
    preflight = client.options(
        f"/widget/ask?key={widget_key.key}",
        headers={"Origin": INTRANET, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"},
    )
    response = me(client, widget_key, token_for(widget_key))

    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == INTRANET
    assert "authorization" in preflight["Access-Control-Allow-Headers"].lower()
    assert response["Access-Control-Allow-Origin"] == INTRANET and "Access-Control-Allow-Credentials" not in response


def test_the_panel_may_be_framed_only_by_the_keys_origins(client, widget_key):
    response = client.get("/widget/panel", {"key": widget_key.key})

    csp = response["Content-Security-Policy"]
    assert response.status_code == 200
    assert f"frame-ancestors {INTRANET}" in csp and "script-src 'self'" in csp
    assert "X-Frame-Options" not in response


def test_an_unknown_or_switched_off_key_is_refused(client, widget_key):
    widget_key.active = False
    widget_key.save()

    panel = client.get("/widget/panel", {"key": widget_key.key})
    config = client.get("/widget/config", {"key": widget_key.key}, headers={"Origin": INTRANET})

    assert panel.status_code == 404 and "frame-ancestors 'none'" in panel["Content-Security-Policy"]
    assert config.status_code == 404 and "switched off" in config.json()["error"]


def test_widget_js_is_served_at_the_site_root_for_pages_on_other_origins(client):
    response = client.get("/widget.js")

    assert response.status_code == 200 and response["Content-Type"].startswith("text/javascript")
    assert b"lantern:hello" in b"".join(response) and response["Cross-Origin-Resource-Policy"] == "cross-origin"


def test_the_admin_stores_origins_as_browsers_send_them_and_shows_the_secret(admin_client):
    response = admin_client.post(
        "/admin/chat/widgetkey/add/",
        {"name": "HR intranet", "origins": "HTTPS://Intranet.Example.com:443/\nhttp://localhost:8080", "active": "on"},
    )

    widget_key = WidgetKey.objects.get(name="HR intranet")
    assert response.status_code == 302
    assert widget_key.allowed_origins == [INTRANET, "http://localhost:8080"]
    page = admin_client.get(f"/admin/chat/widgetkey/{widget_key.pk}/change/").content.decode()
    assert widget_key.secret in page and widget_key.key in page


def test_the_admin_refuses_an_origin_with_a_path(admin_client):
    response = admin_client.post("/admin/chat/widgetkey/add/", {"name": "HR", "origins": "https://intranet.example.com/hr"})

    assert response.status_code == 200 and "leave out the path" in response.content.decode()
    assert not WidgetKey.objects.exists()


# --- Anonymous use --------------------------------------------------------------------------------------------------


def test_without_a_token_or_session_a_key_that_does_not_allow_anonymous_use_refuses_questions(client, widget_key, fake_llm):
    response = ask(client, widget_key, "When is the cafeteria open?")

    assert response.status_code == 401 and response.json()["kind"] == "sign_in_required"
    assert fake_llm.requests == []


def test_anonymous_questions_read_public_collections_only(client, widget_key, fake_llm, public_info, handbook):
    widget_key.allow_anonymous = True
    widget_key.save()
    fake_llm.add_replies(["It opens at 8:00 [1]."], ["I do not know."])

    public = events_of(ask(client, widget_key, "When is the cafeteria open?"))
    private = events_of(ask(client, widget_key, "How many leave hours carry over?"))

    assert [p["title"] for p in public["sources"]["passages"]] == ["Cafeteria opening hours"]
    assert public["citations"]["text"] == "It opens at 8:00 [1]." and public["citations"]["citations"][0]["n"] == 1
    assert "Leave policy" not in json.dumps(private) and "240" not in json.dumps(private)
    assert all("240 annual leave" not in json.dumps(request) for request in fake_llm.requests)
    assert not Conversation.objects.exists()  # nobody to keep a conversation for


def test_an_anonymous_question_is_recorded_in_the_audit_log_by_address(client, widget_key, fake_llm, public_info):
    from audit.models import AuditEvent

    widget_key.allow_anonymous = True
    widget_key.save()
    events_of(ask(client, widget_key, "When is the cafeteria open?"))

    (event,) = AuditEvent.objects.filter(action=AuditEvent.Action.QUESTION_ASKED)
    assert event.actor is None and event.ip == "127.0.0.1" and event.via == AuditEvent.Via.WIDGET
    assert event.detail["question"] == "When is the cafeteria open?" and event.target == "widget key Intranet"


# --- Reading rights -------------------------------------------------------------------------------------------------


def test_a_token_user_outside_the_group_gets_no_passage_or_title_from_a_group_only_collection(client, widget_key, fake_llm, payroll, handbook):
    fake_llm.add_replies(["I cannot find that in the documents."])

    events = events_of(ask(client, widget_key, "What is the salary band for senior engineers?", token_for(widget_key, "erin", ["hr"])))

    everything = json.dumps(events)
    assert "Salary bands" not in everything and "118,000" not in everything
    assert all("118,000" not in json.dumps(request) for request in fake_llm.requests)


def test_a_token_user_in_the_group_gets_a_streamed_cited_answer_from_it(client, widget_key, fake_llm, payroll):
    fake_llm.add_replies(["Senior engineers earn ", "91,000 to 118,000 euros [1]."])

    response = ask(client, widget_key, "What is the salary band for senior engineers?", token_for(widget_key, "paula", ["payroll"]))
    events = events_of(response)

    assert response["Content-Type"].startswith("text/event-stream")
    assert list(events) == ["start", "sources", "token", "citations", "done"]
    assert events["sources"]["passages"][0]["title"] == "Salary bands 2026"
    assert events["citations"]["citations"][0]["verified"]
    conversation = Conversation.objects.get(pk=events["start"]["conversation_id"])
    assert conversation.user.username == "paula"


def test_leaving_the_group_in_the_next_token_takes_effect_on_the_next_question(client, widget_key, fake_llm, payroll):
    question = "What is the salary band for senior engineers?"
    first = events_of(ask(client, widget_key, question, token_for(widget_key, "paula", ["payroll"])))
    second = events_of(ask(client, widget_key, question, token_for(widget_key, "paula", [])))

    assert first["sources"]["passages"] and second["sources"]["passages"] == []


def test_a_token_user_cannot_continue_someone_elses_conversation(client, widget_key, fake_llm, handbook):
    theirs = events_of(ask(client, widget_key, "How many leave hours carry over?", token_for(widget_key, "paula")))

    response = ask(client, widget_key, "And next year?", token_for(widget_key, "erin"), conversation=theirs["start"]["conversation_id"])

    assert response.status_code == 404 and response.json()["kind"] == "no_conversation"


# --- The portal's own session ---------------------------------------------------------------------------------------


def test_a_signed_in_user_asks_through_the_panel_with_its_csrf_token(widget_key, fake_llm, handbook, django_user_model):
    django_user_model.objects.create_user("sam", password="pw-sam-123456")
    browser = Client(enforce_csrf_checks=True)
    browser.login(username="sam", password="pw-sam-123456")
    panel = browser.get("/widget/panel", {"key": widget_key.key})
    config = panel.context["config"]
    fake_llm.add_replies(["Up to 240 hours [1]."])

    without = ask(browser, widget_key, "How many leave hours carry over?", origin=None)
    with_token = ask(browser, widget_key, "How many leave hours carry over?", origin=None, headers={"X-CSRFToken": config["csrf"]})

    assert config["user"] == "sam"
    assert without.status_code == 403 and without.json()["kind"] == "csrf"
    assert events_of(with_token)["citations"]["text"] == "Up to 240 hours [1]."


def test_the_demo_intranet_page_embeds_the_widget_with_a_token_the_portal_accepts(client, widget_key):
    from demo.intranet import intranet_page

    page = intranet_page(portal="http://testserver/", key=widget_key.key, secret=widget_key.secret, username="demo", groups=["hr"])

    tag = re.search(r'<script src="([^"]+)" data-key="([^"]+)" data-token="([^"]+)"', page)
    assert tag.group(1) == "http://testserver/widget.js" and tag.group(2) == widget_key.key
    assert me(client, widget_key, tag.group(3)).json() == {"via": "token", "name": "demo"}
