"""Fixtures and steps shared by the content health tests: data made through the real flows (ingesting with the
pipeline, asking through chat.services against a FakeLLM, rating through the feedback endpoint), and the page read
as an admin reads it (its HTML parsed, text compared)."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup
from django.test import Client
from django.urls import reverse

from chat import services
from chat.prompting import NOT_FOUND
from tests.helpers import markdown, upload_and_process

LEAVE = markdown(
    "Leave policy",
    ("Annual leave", "You can carry over a maximum of 240 annual leave hours into the next leave year."),
    ("Contractors", "Contractors do not accrue annual leave; their agency sets their time off."),
)
EXPENSES = markdown(
    "Expenses policy",
    ("Receipts", "Expense receipts must be submitted within thirty days of purchase through the finance portal."),
    ("Meals", "Meals on business trips are reimbursed up to 45 euros per day."),
)


@pytest.fixture
def fake_llm_reply():
    """The model abstains unless a test scripts a reply, so questions become gaps unless told otherwise."""
    return NOT_FOUND


@pytest.fixture
def handbook(collection):
    upload_and_process(collection, ("leave.md", LEAVE), ("expenses.md", EXPENSES))
    return collection


@pytest.fixture
def employee(django_user_model):
    return django_user_model.objects.create_user("erin", password="pw-erin-12345", email="erin@example.com")


@pytest.fixture
def employee_client(employee) -> Client:
    client = Client()
    client.force_login(employee)
    return client


@pytest.fixture
def admin_client(staff_user) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


def ask(user, text: str) -> int:
    """Ask in a new conversation, as the chat page does; returns the answer's message id."""
    conversation = services.conversation_create(user=user)
    events = list(services.answer_question(user=user, conversation=conversation, text=text))
    return events[-1].data["message_id"]


def rate(client: Client, message_id: int, *, helpful: bool, comment: str = "") -> None:
    response = client.post(
        reverse("chat:feedback", args=[message_id]), {"helpful": "true" if helpful else "false", "comment": comment},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200, response.content


def page(client: Client, name: str, **params) -> BeautifulSoup:
    response = client.get(reverse(name), params)
    assert response.status_code == 200, response.content[:500]
    return BeautifulSoup(response.content, "html.parser")


def text(element) -> str:
    return " ".join(element.get_text(" ").split())
