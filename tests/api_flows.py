"""What the JSON API tests share: users, tokens made through the tokens page, a FakeLLM, fresh rate counters, and
reading server-sent events. Test modules import the fixtures they use."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from django.test import Client

from accounts.models import ApiToken

from .helpers import markdown, upload_and_process

API = "/api/v1"
LEAVE_POLICY = markdown(
    "Leave policy",
    ("Annual leave", "Employees get 25 days of paid annual leave per year. Unused days carry over until March."),
    ("Sick leave", "Sick leave needs a doctor's note after three consecutive days of absence."),
)
QUESTION = "How many days of annual leave do employees get?"
ANSWER = "Employees get 25 days of paid annual leave per year [1]."


@pytest.fixture(autouse=True)
def fresh_rate_counters(settings):
    """Each test counts requests from zero: its own cache key prefix (a Redis cache outlives a test)."""
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}}


@pytest.fixture
def fake_llm_reply():
    return ANSWER


@pytest.fixture
def employee(db, django_user_model):
    return django_user_model.objects.create_user("bob", password="pw-bob-12345")


@pytest.fixture
def handbook(collection):
    return upload_and_process(collection, ("leave.md", LEAVE_POLICY))


def token_for(user) -> str:
    """A token created as its owner creates one: through the tokens page, the secret read off the page."""
    client = Client()
    client.force_login(user)
    response = client.post("/accounts/tokens/", {"name": f"script {ApiToken.objects.count() + 1}"})
    assert response.status_code == 201, response.content
    return re.search(r'id="new-token" value="([^"]+)"', response.content.decode()).group(1)


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def employee_token(employee) -> str:
    return token_for(employee)


@pytest.fixture
def staff_token(staff_user) -> str:
    return token_for(staff_user)


def post_json(client, path: str, body: dict, **headers):
    return client.post(API + path, json.dumps(body), content_type="application/json", headers=headers)


def ask(client, secret: str, question: str = QUESTION, **fields):
    return post_json(client, "/ask", {"question": question, **fields}, **bearer(secret))


def ask_streamed(client, secret: str, question: str = QUESTION, **fields) -> list[tuple[str, dict]]:
    response = ask(client, secret, question, stream=True, **fields)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/event-stream")
    return sse_events(b"".join(response.streaming_content).decode())


def sse_events(body: str) -> list[tuple[str, dict]]:
    events = []
    for block in body.split("\n\n"):
        if block.strip():
            fields = dict(line.split(": ", 1) for line in block.splitlines())
            events.append((fields["event"], json.loads(fields["data"])))
    return events
