"""Who may read what, proved from the outside through the JSON API: a user outside a collection's groups gets no
passage, citation, title or document of it by asking (whole or streamed), in conversations, in the collections list
or the documents endpoints, and another user's conversations and answers are 404, as if they did not exist.

Each refusal is paired with the same request by a member of the group, so a test cannot pass by finding nothing."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from chat.models import Conversation, Feedback, Message
from kb.models import Document

from .api_flows import API, ask, ask_streamed, bearer, fresh_rate_counters, post_json, token_for  # noqa: F401
from .fake_llm import FakeLLM
from .permission_flows import SALARY_QUESTION, assert_no_trace
from .permission_flows import erin, fake_llm_reply, hana, hr_group, library  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


def prompts_text(fake: FakeLLM) -> str:
    return " ".join(str(m.get("content", "")) for messages in fake.messages for m in messages)


# --- Asking ----------------------------------------------------------------------------------------------------------


def test_a_user_outside_the_group_gets_no_passage_of_its_collection_by_asking(client, library, erin, fake_llm):
    response = ask(client, token_for(erin), SALARY_QUESTION)
    assert response.status_code == 200
    body = response.json()
    assert all(p["collection_id"] == library["handbook"].pk for p in body["passages"])
    assert_no_trace(response.content.decode())
    assert_no_trace(prompts_text(fake_llm))  # the model never saw the salaries either


def test_a_member_of_the_group_gets_its_passages_by_asking(client, library, hana, fake_llm):
    body = ask(client, token_for(hana), SALARY_QUESTION).json()
    assert body["passages"][0]["title"] == "Salary bands 2026"
    assert "91,500" in body["passages"][0]["text"] and body["citations"][0]["n"] == 1


def test_a_streamed_answer_carries_no_trace_of_a_group_only_collection(client, library, erin, fake_llm):
    response = ask(client, token_for(erin), SALARY_QUESTION, stream=True)
    body = b"".join(response.streaming_content).decode()
    assert "event: sources" in body and "event: done" in body
    assert_no_trace(body)
    assert_no_trace(prompts_text(fake_llm))


def test_a_streamed_answer_to_a_member_carries_the_passages(client, library, hana, fake_llm):
    events = dict(ask_streamed(client, token_for(hana), SALARY_QUESTION))
    assert events["sources"]["passages"][0]["title"] == "Salary bands 2026"


def test_naming_a_group_only_collection_is_the_same_404_as_a_collection_that_does_not_exist(client, library, erin, hana, fake_llm):
    hr = library["hr"].pk
    refused = ask(client, token_for(erin), SALARY_QUESTION, collection_ids=[hr])
    missing = ask(client, token_for(erin), SALARY_QUESTION, collection_ids=[999999])
    assert refused.status_code == missing.status_code == 404
    assert refused.json()["detail"] == missing.json()["detail"].replace("999999", str(hr))
    assert not Conversation.objects.filter(user=erin).exists()
    assert ask(client, token_for(hana), SALARY_QUESTION, collection_ids=[hr]).status_code == 200


def test_a_session_user_outside_the_group_gets_no_trace_either(library, erin, fake_llm):
    browser = Client()
    browser.force_login(erin)
    response = post_json(browser, "/ask", {"question": SALARY_QUESTION})
    assert response.status_code == 200
    assert_no_trace(response.content.decode())


# --- Collections and documents ---------------------------------------------------------------------------------------


def test_the_collections_list_leaves_out_a_group_only_collection(client, library, erin, hana):
    outsider = client.get(f"{API}/collections", headers=bearer(token_for(erin)))
    assert [c["name"] for c in outsider.json()] == ["Handbook"]
    assert_no_trace(outsider.content.decode())
    member = client.get(f"{API}/collections", headers=bearer(token_for(hana)))
    assert {c["name"] for c in member.json()} == {"Handbook", "HR salaries"}


@pytest.fixture
def staff_outsider(django_user_model):
    return django_user_model.objects.create_user("sam", password="pw-sam-123456", is_staff=True)


@pytest.fixture
def staff_member(django_user_model, hr_group):
    user = django_user_model.objects.create_user("hugo", password="pw-hugo-12345", is_staff=True)
    user.groups.add(hr_group)
    return user


def test_staff_outside_the_group_do_not_see_its_documents_in_the_list(client, library, staff_outsider, staff_member):
    outsider = client.get(f"{API}/documents", headers=bearer(token_for(staff_outsider)))
    assert [d["title"] for d in outsider.json()["items"]] == ["Leave policy"]
    assert_no_trace(outsider.content.decode())
    assert client.get(f"{API}/documents", {"collection_id": library["hr"].pk}, headers=bearer(token_for(staff_outsider))).json() == {
        "count": 0, "items": []
    }
    member = client.get(f"{API}/documents", headers=bearer(token_for(staff_member)))
    assert {d["title"] for d in member.json()["items"]} == {"Leave policy", "Salary bands 2026"}


def test_staff_outside_the_group_get_404_for_its_documents_as_for_ones_that_do_not_exist(client, library, staff_outsider):
    secret = token_for(staff_outsider)
    salaries = library["salaries"]
    batch_id = salaries.batch_id
    responses = [
        client.get(f"{API}/documents/{salaries.pk}", headers=bearer(secret)),
        client.post(f"{API}/documents/{salaries.pk}/retry", headers=bearer(secret)),
        client.delete(f"{API}/documents/{salaries.pk}", headers=bearer(secret)),
        client.get(f"{API}/batches/{batch_id}", headers=bearer(secret)),
        client.post(
            f"{API}/documents",
            {"collection_id": library["hr"].pk, "files": [SimpleUploadedFile("new.txt", b"New.")]},
            headers=bearer(secret),
        ),
    ]
    assert [r.status_code for r in responses] == [404] * 5
    for response in responses:
        assert_no_trace(response.content.decode())
    assert Document.objects.filter(pk=salaries.pk).exists()
    assert library["hr"].documents.count() == 1


def test_a_superuser_reads_every_collection(client, library, django_user_model):
    root = django_user_model.objects.create_superuser("root", password="pw-root-12345")
    body = client.get(f"{API}/documents", headers=bearer(token_for(root))).json()
    assert {d["title"] for d in body["items"]} == {"Leave policy", "Salary bands 2026"}


# --- Conversations ---------------------------------------------------------------------------------------------------


def test_a_conversation_hides_passages_of_a_collection_the_user_can_no_longer_read(client, library, hana, hr_group, fake_llm):
    secret = token_for(hana)
    answer = ask(client, secret, SALARY_QUESTION).json()
    assert "91,500" in client.get(f"{API}/conversations/{answer['conversation_id']}", headers=bearer(secret)).content.decode()

    hana.groups.remove(hr_group)  # she moves out of HR: from the next request on, the salaries are not hers to read
    response = client.get(f"{API}/conversations/{answer['conversation_id']}", headers=bearer(secret))
    assert response.status_code == 200
    reply = response.json()["messages"][1]
    assert reply["passages"] == [] and reply["citations"] == []
    assert_no_trace(response.content.decode())


def test_the_conversations_list_shows_only_the_users_own(client, library, erin, hana, fake_llm):
    ask(client, token_for(hana), "Salary bands for band 7 engineers this year")
    ask(client, token_for(erin), "How many days of annual leave do employees get?")
    body = client.get(f"{API}/conversations", headers=bearer(token_for(erin))).json()
    assert [c["title"] for c in body["items"]] == ["How many days of annual leave do employees get?"]


def test_another_users_conversation_and_answers_are_404_and_unchanged(client, library, erin, hana, fake_llm):
    answer = ask(client, token_for(hana), SALARY_QUESTION).json()
    conversation_id, message_id = answer["conversation_id"], answer["message_id"]
    secret = token_for(erin)
    responses = [
        client.get(f"{API}/conversations/{conversation_id}", headers=bearer(secret)),
        client.delete(f"{API}/conversations/{conversation_id}", headers=bearer(secret)),
        ask(client, secret, SALARY_QUESTION, conversation_id=conversation_id),
        post_json(client, f"/messages/{message_id}/feedback", {"helpful": False}, **bearer(secret)),
        client.post(f"{API}/messages/{message_id}/stop", headers=bearer(secret)),
    ]
    assert [r.status_code for r in responses] == [404] * 5
    missing = client.get(f"{API}/conversations/999999", headers=bearer(secret))
    assert responses[0].json() == missing.json() == {"detail": "Conversation not found."}
    for response in responses:
        assert_no_trace(response.content.decode())
    assert Conversation.objects.get(pk=conversation_id).messages.count() == 2
    assert not Feedback.objects.exists()
    assert Message.objects.get(pk=message_id).status == Message.Status.COMPLETE
