"""The JSON API as a script uses it, through real HTTP requests: asking (whole and streamed), conversations, feedback,
collections, documents for staff, its errors, its rate limits and its documentation page. The model is FakeLLM;
retrieval, prompting, citations and ingestion are real."""

from __future__ import annotations

import json
import re

import pytest
from asgiref.sync import async_to_sync
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import AsyncClient, Client

from accounts import throttling
from chat.models import Conversation, Feedback, Message
from kb.models import Collection, Document

from .api_flows import (  # noqa: F401 - fixtures
    ANSWER,
    API,
    QUESTION,
    ask,
    ask_streamed,
    bearer,
    employee,
    employee_token,
    fake_llm_reply,
    fresh_rate_counters,
    handbook,
    post_json,
    sse_events,
    staff_token,
    token_for,
)
from .helpers import markdown, process

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client):
    return client


def get(client, path: str, secret: str, **params):
    return client.get(API + path, params, headers=bearer(secret))


# --- Asking ----------------------------------------------------------------------------------------------------------


def test_ask_returns_the_whole_cited_answer_as_json(api, employee_token, handbook, fake_llm):
    response = ask(api, employee_token)
    assert response.status_code == 200
    body = response.json()
    assert body["text"] == ANSWER and body["answered"] is True and body["status"] == "complete"
    assert body["passages"][0]["title"] == "Leave policy"
    assert "25 days of paid annual leave" in body["passages"][0]["text"]
    assert body["passages"][0]["url"].startswith("/passages/")
    assert body["citations"][0]["n"] == 1 and body["citations"][0]["verified"] is True
    assert body["error"] == ""


def test_ask_records_the_turn_in_a_new_conversation_named_after_the_question(api, employee, employee_token, handbook, fake_llm):
    body = ask(api, employee_token).json()
    conversation = Conversation.objects.get(pk=body["conversation_id"], user=employee)
    assert conversation.title == QUESTION
    assert conversation.messages.get(role=Message.Role.ASSISTANT).pk == body["message_id"]


def test_a_follow_up_with_a_conversation_id_joins_that_conversation(api, employee, employee_token, handbook, fake_llm):
    first = ask(api, employee_token).json()
    second = ask(api, employee_token, "What does sick leave need after three days?", conversation_id=first["conversation_id"])
    assert second.status_code == 200 and second.json()["conversation_id"] == first["conversation_id"]
    assert Conversation.objects.filter(user=employee).count() == 1


def test_a_streamed_ask_sends_the_chat_pages_events_in_order(api, employee_token, handbook, fake_llm):
    fake_llm.add_replies(["Employees get ", "25 days ", "of paid annual leave per year ", "[1]."])
    events = ask_streamed(api, employee_token)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert kinds.index("sources") < kinds.index("token") < kinds.index("citations")
    assert "".join(data["text"] for kind, data in events if kind == "token") == ANSWER
    assert dict(events)["sources"]["passages"][0]["title"] == "Leave policy"


@pytest.mark.django_db(transaction=True)  # the answer runs in a thread of its own, with its own connection
def test_under_asgi_a_streamed_answer_comes_through_the_async_path(employee_token, handbook, fake_llm):
    async def read() -> tuple[bool, bytes]:
        response = await AsyncClient().post(
            f"{API}/ask", json.dumps({"question": QUESTION, "stream": True}), content_type="application/json",
            headers=bearer(employee_token),
        )
        return response.is_async, b"".join([chunk async for chunk in response.streaming_content])

    is_async, body = async_to_sync(read)()
    assert is_async
    events = sse_events(body.decode())
    assert [kind for kind, _ in events][-2:] == ["citations", "done"]
    assert dict(events)["citations"]["text"] == ANSWER


def test_accept_event_stream_also_streams(api, employee_token, handbook, fake_llm):
    response = api.post(
        f"{API}/ask", json.dumps({"question": QUESTION}), content_type="application/json",
        headers={**bearer(employee_token), "Accept": "text/event-stream"},
    )
    assert response["Content-Type"].startswith("text/event-stream")
    assert response["Cache-Control"] == "no-cache" and response["X-Accel-Buffering"] == "no"
    b"".join(response.streaming_content)


def test_a_question_the_knowledge_base_cannot_answer_says_so(api, employee_token, handbook, fake_llm):
    body = ask(api, employee_token, "Which rocket fuel powers the Saturn V first stage engines?").json()
    assert body["answered"] is False and body["passages"] == []
    assert fake_llm.requests == []  # nothing found: the model is not asked


def test_when_the_model_is_down_the_answer_keeps_its_passages_and_says_why(api, employee_token, handbook, fake_llm):
    fake_llm.fail_with(500)
    body = ask(api, employee_token).json()
    assert body["status"] == "failed" and body["error"]
    assert body["passages"][0]["title"] == "Leave policy"


def test_ask_can_be_limited_to_chosen_collections(api, employee_token, handbook, fake_llm):
    other = Collection.objects.create(name="Engineering")
    body = ask(api, employee_token, collection_ids=[other.pk]).json()
    assert body["passages"] == [] and body["answered"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "question"), ({"question": "   "}, "question"), ({"question": "x" * 4001}, "question"),
     ({"question": QUESTION, "collection_ids": []}, "collection_ids"), ({"question": QUESTION, "stream": "maybe"}, "stream")],
)
def test_an_invalid_question_gets_422_naming_the_field(api, employee_token, body, field):
    response = post_json(api, "/ask", body, **bearer(employee_token))
    assert response.status_code == 422
    assert response.json()["detail"].startswith(f"{field}: ")
    assert not Conversation.objects.exists()


def test_a_body_that_is_not_json_gets_400(api, employee_token):
    response = api.post(f"{API}/ask", "{question", content_type="application/json", headers=bearer(employee_token))
    assert response.status_code == 400 and response.json() == {"detail": "The request body is not valid JSON."}


def test_asking_in_a_conversation_that_does_not_exist_is_404(api, employee_token):
    response = post_json(api, "/ask", {"question": QUESTION, "conversation_id": 999999}, **bearer(employee_token))
    assert response.status_code == 404 and response.json() == {"detail": "Conversation not found."}


def test_an_unknown_collection_is_404(api, employee_token):
    response = post_json(api, "/ask", {"question": QUESTION, "collection_ids": [999999]}, **bearer(employee_token))
    assert response.status_code == 404
    assert response.json()["detail"] == "No collection with id 999999 among those you may read."


# --- Conversations and feedback --------------------------------------------------------------------------------------


def test_conversations_are_listed_latest_first_and_paginated(api, employee_token, handbook, fake_llm):
    ids = [ask(api, employee_token, f"{QUESTION} ({n})").json()["conversation_id"] for n in range(3)]
    body = get(api, "/conversations", employee_token, limit=2).json()
    assert body["count"] == 3 and [c["id"] for c in body["items"]] == ids[::-1][:2]
    assert [c["id"] for c in get(api, "/conversations", employee_token, limit=2, offset=2).json()["items"]] == ids[:1]


def test_a_conversation_comes_with_its_messages_passages_and_feedback(api, employee_token, handbook, fake_llm):
    answer = ask(api, employee_token).json()
    post_json(api, f"/messages/{answer['message_id']}/feedback", {"helpful": False, "comment": "Too short"}, **bearer(employee_token))
    body = get(api, f"/conversations/{answer['conversation_id']}", employee_token).json()
    question, reply = body["messages"]
    assert question["role"] == "user" and question["text"] == QUESTION
    assert reply["role"] == "assistant" and reply["text"] == ANSWER
    assert reply["passages"][0]["title"] == "Leave policy" and reply["citations"][0]["n"] == 1
    assert reply["feedback"] == {"message_id": answer["message_id"], "helpful": False, "comment": "Too short"}


def test_deleting_a_conversation_removes_it_and_its_messages(api, employee_token, handbook, fake_llm):
    answer = ask(api, employee_token).json()
    response = api.delete(f"{API}/conversations/{answer['conversation_id']}", headers=bearer(employee_token))
    assert response.status_code == 204
    assert not Conversation.objects.exists() and not Message.objects.exists()
    assert get(api, f"/conversations/{answer['conversation_id']}", employee_token).status_code == 404


def test_a_second_vote_replaces_the_first(api, employee_token, handbook, fake_llm):
    message_id = ask(api, employee_token).json()["message_id"]
    post_json(api, f"/messages/{message_id}/feedback", {"helpful": True}, **bearer(employee_token))
    response = post_json(api, f"/messages/{message_id}/feedback", {"helpful": False, "comment": " wrong "}, **bearer(employee_token))
    assert response.status_code == 200 and response.json() == {"message_id": message_id, "helpful": False, "comment": "wrong"}
    assert Feedback.objects.get().helpful is False


def test_feedback_without_a_verdict_is_422(api, employee_token, handbook, fake_llm):
    message_id = ask(api, employee_token).json()["message_id"]
    response = post_json(api, f"/messages/{message_id}/feedback", {"comment": "hm"}, **bearer(employee_token))
    assert response.status_code == 422 and response.json()["detail"] == "helpful: Field required"


def test_feedback_on_a_question_rather_than_an_answer_is_404(api, employee_token, handbook, fake_llm):
    ask(api, employee_token)
    question = Message.objects.get(role=Message.Role.USER)
    response = post_json(api, f"/messages/{question.pk}/feedback", {"helpful": True}, **bearer(employee_token))
    assert response.status_code == 404 and response.json() == {"detail": "Answer not found."}


def test_stopping_a_finished_answer_leaves_it_complete(api, employee_token, handbook, fake_llm):
    message_id = ask(api, employee_token).json()["message_id"]
    response = api.post(f"{API}/messages/{message_id}/stop", headers=bearer(employee_token))
    assert response.status_code == 200
    assert Message.objects.get(pk=message_id).status == Message.Status.COMPLETE


# --- Collections -----------------------------------------------------------------------------------------------------


def test_collections_list_names_and_indexed_document_counts(api, employee_token, handbook):
    Collection.objects.create(name="Engineering", description="Runbooks")
    body = get(api, "/collections", employee_token).json()
    assert [(c["name"], c["documents"]) for c in body] == [("Engineering", 0), ("Handbook", 1)]
    assert body[0]["description"] == "Runbooks"


# --- Documents (staff) -----------------------------------------------------------------------------------------------


def upload(client, secret: str, collection_id, *files: tuple[str, bytes]):
    data = {"collection_id": collection_id, "files": [SimpleUploadedFile(name, content) for name, content in files]}
    return client.post(f"{API}/documents", data, headers=bearer(secret))


def test_staff_upload_files_which_are_queued_in_one_batch(api, staff_token, collection):
    response = upload(api, staff_token, collection.pk, ("a.md", markdown("Alpha", ("One", "Alpha text."))), ("b.txt", b"Beta."))
    assert response.status_code == 201
    body = response.json()
    assert sorted(d["source_path"] for d in body["queued"]) == ["a.md", "b.txt"]
    assert all(d["status"] == "queued" and d["progress"] == 0 for d in body["queued"])
    assert body["unchanged"] == [] and body["rejected"] == []
    assert set(Document.objects.filter(batch_id=body["batch_id"]).values_list("source_path", flat=True)) == {"a.md", "b.txt"}


def test_uploading_the_same_bytes_again_changes_nothing(api, staff_token, collection):
    upload(api, staff_token, collection.pk, ("a.txt", b"Alpha."))
    body = upload(api, staff_token, collection.pk, ("copy.txt", b"Alpha.")).json()
    assert body["queued"] == [] and [d["source_path"] for d in body["unchanged"]] == ["a.txt"]


def test_a_file_lantern_cannot_read_is_rejected_with_its_reason_and_the_others_go_on(api, staff_token, collection, settings):
    settings.ZIP_MAX_FILES = 1
    import io
    import zipfile

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("one.txt", "One.")
        zf.writestr("two.txt", "Two.")
    body = upload(api, staff_token, collection.pk, ("many.zip", archive.getvalue()), ("fine.txt", b"Fine.")).json()
    assert [d["source_path"] for d in body["queued"]] == ["fine.txt"]
    assert body["rejected"][0]["status"] == "failed" and "the limit is 1" in body["rejected"][0]["error"]


def test_a_file_over_the_upload_limit_is_413_and_nothing_is_recorded(api, staff_token, collection, settings):
    settings.MAX_UPLOAD_MB = 1
    response = upload(api, staff_token, collection.pk, ("small.txt", b"Small."), ("big.txt", b"x" * (1024 * 1024 + 1)))
    assert response.status_code == 413
    assert response.json()["detail"] == "big.txt is larger than the 1 MB upload limit; nothing was uploaded."
    assert not Document.objects.exists()


def test_an_upload_without_files_or_collection_is_422(api, staff_token, collection):
    response = api.post(f"{API}/documents", {"collection_id": collection.pk}, headers=bearer(staff_token))
    assert response.status_code == 422 and response.json()["detail"] == "files: Field required"
    response = upload(api, staff_token, "", ("a.txt", b"A."))
    assert response.status_code == 422 and response.json()["detail"].startswith("collection_id: ")


def test_an_upload_can_name_the_owner_and_review_date(api, staff_token, staff_user, collection):
    response = api.post(
        f"{API}/documents",
        {"collection_id": collection.pk, "files": [SimpleUploadedFile("a.txt", b"A.")], "owner": "alice", "review_by": "2027-03-01"},
        headers=bearer(staff_token),
    )
    assert response.status_code == 201
    document = Document.objects.get()
    assert document.owner == staff_user and str(document.review_by) == "2027-03-01"


def test_an_upload_naming_an_unknown_owner_is_422_and_nothing_is_recorded(api, staff_token, collection):
    response = api.post(
        f"{API}/documents",
        {"collection_id": collection.pk, "files": [SimpleUploadedFile("a.txt", b"A.")], "owner": "nobody"},
        headers=bearer(staff_token),
    )
    assert response.status_code == 422 and "No active user is called 'nobody'" in response.json()["detail"]
    assert not Document.objects.exists()


def test_an_upload_to_a_collection_that_does_not_exist_is_404(api, staff_token, db):
    response = upload(api, staff_token, 999999, ("a.txt", b"A."))
    assert response.status_code == 404 and not Document.objects.exists()


def test_documents_list_their_status_and_progress_and_filter_by_batch_and_status(api, staff_token, collection):
    first = upload(api, staff_token, collection.pk, ("good.txt", b"Remote work needs manager approval."), ("empty.txt", b"")).json()
    upload(api, staff_token, collection.pk, ("later.txt", b"Later."))
    process(*Document.objects.filter(batch_id=first["batch_id"]))

    body = get(api, "/documents", staff_token, batch_id=first["batch_id"]).json()
    by_path = {d["source_path"]: d for d in body["items"]}
    assert body["count"] == 2
    assert by_path["good.txt"]["status"] == "indexed" and by_path["good.txt"]["progress"] == 1.0
    assert by_path["good.txt"]["chunks"] >= 1
    assert by_path["empty.txt"]["status"] == "failed" and by_path["empty.txt"]["error"]

    failed = get(api, "/documents", staff_token, status="failed").json()
    assert [d["source_path"] for d in failed["items"]] == ["empty.txt"]
    assert get(api, "/documents", staff_token, status="lost").status_code == 422

    batch = get(api, f"/batches/{first['batch_id']}", staff_token).json()
    assert batch["total"] == 2 and batch["indexed"] == 1 and batch["failed"] == 1 and batch["done"] is True


def test_one_document_shows_its_status(api, staff_token, collection):
    document_id = upload(api, staff_token, collection.pk, ("a.txt", b"Alpha.")).json()["queued"][0]["id"]
    body = get(api, f"/documents/{document_id}", staff_token).json()
    assert body["id"] == document_id and body["status"] == "queued" and body["collection"] == "Handbook"
    assert get(api, "/documents/999999", staff_token).json() == {"detail": "Document not found."}


def test_a_failed_document_can_be_retried_and_an_indexed_one_cannot(api, staff_token, collection):
    body = upload(api, staff_token, collection.pk, ("good.txt", b"Remote work needs approval."), ("empty.txt", b"")).json()
    process(*Document.objects.filter(batch_id=body["batch_id"]))
    failed = Document.objects.get(source_path="empty.txt")
    indexed = Document.objects.get(source_path="good.txt")

    response = api.post(f"{API}/documents/{failed.pk}/retry", headers=bearer(staff_token))
    assert response.status_code == 200 and response.json()["status"] == "queued"

    response = api.post(f"{API}/documents/{indexed.pk}/retry", headers=bearer(staff_token))
    assert response.status_code == 409
    assert response.json()["detail"] == "“good” is not a failed document with a stored file, so it was not retried."


def test_deleting_a_document_removes_it_with_its_passages(api, staff_token, collection):
    body = upload(api, staff_token, collection.pk, ("good.txt", b"Remote work needs approval."))
    document = process(*Document.objects.filter(batch_id=body.json()["batch_id"]))[0]
    assert document.chunks.exists()
    response = api.delete(f"{API}/documents/{document.pk}", headers=bearer(staff_token))
    assert response.status_code == 204
    assert not Document.objects.filter(pk=document.pk).exists()
    assert api.delete(f"{API}/documents/{document.pk}", headers=bearer(staff_token)).status_code == 404


def test_an_employee_who_is_not_staff_gets_403_on_documents(api, employee_token, collection):
    document = Document.objects.create(collection=collection, title="Plan", source_path="plan.txt", sha256="0")
    calls = [
        api.get(f"{API}/documents", headers=bearer(employee_token)),
        api.get(f"{API}/documents/{document.pk}", headers=bearer(employee_token)),
        upload(api, employee_token, collection.pk, ("a.txt", b"A.")),
        api.post(f"{API}/documents/{document.pk}/retry", headers=bearer(employee_token)),
        api.delete(f"{API}/documents/{document.pk}", headers=bearer(employee_token)),
    ]
    assert [c.status_code for c in calls] == [403] * 5
    assert calls[0].json() == {"detail": "Only administrators (staff) may manage documents."}
    assert Document.objects.count() == 1


# --- Errors on the edges ---------------------------------------------------------------------------------------------


def test_an_unknown_route_under_the_api_is_a_json_404(api, employee_token):
    for path in ("/nothing-here", "/conversations/1/extra", "/"):
        response = api.get(API + path, headers=bearer(employee_token))
        assert response.status_code == 404, path
        assert response.json()["detail"].startswith("No such endpoint"), path


def test_a_wrong_method_is_a_json_405_naming_the_allowed_ones(api, employee_token):
    response = api.put(f"{API}/conversations", headers=bearer(employee_token))
    assert response.status_code == 405
    assert response.json() == {"detail": "PUT is not allowed here; use GET."}


def test_an_id_that_is_not_a_number_is_422(api, employee_token):
    response = api.get(f"{API}/conversations/abc", headers=bearer(employee_token))
    assert response.status_code == 422 and response.json()["detail"].startswith("conversation_id: ")


def test_a_json_body_over_djangos_limit_is_413(api, employee_token, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = post_json(api, "/ask", {"question": "x" * 2000}, **bearer(employee_token))
    assert response.status_code == 413 and response.json() == {"detail": "The request body is too large."}


# --- Rate limits -----------------------------------------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch):
    """The rate limiter's clock, moved by the test instead of sleeping."""
    moment = {"now": 1_000_000.0}
    monkeypatch.setattr(throttling, "now", lambda: moment["now"])
    return moment


def test_a_user_over_the_rate_limit_gets_429_with_retry_after_then_recovers(api, employee_token, settings, clock):
    settings.API_RATE_LIMIT = "3/minute"
    assert [get(api, "/collections", employee_token).status_code for _ in range(3)] == [200, 200, 200]

    refused = get(api, "/collections", employee_token)
    assert refused.status_code == 429
    assert refused["Retry-After"] == "20"  # the minute opened at 999,960 s and closes at 1,000,020
    assert refused.json() == {"detail": "Too many requests: slow down. Try again in 20 seconds."}

    clock["now"] += 19
    assert get(api, "/collections", employee_token).status_code == 429
    clock["now"] += 1
    assert get(api, "/collections", employee_token).status_code == 200


def test_the_user_limit_counts_their_tokens_and_session_together(api, employee, employee_token, settings, clock):
    settings.API_RATE_LIMIT = "2/minute"
    other_token = token_for(employee)
    assert get(api, "/collections", employee_token).status_code == 200
    assert get(api, "/collections", other_token).status_code == 200
    browser = Client()
    browser.force_login(employee)
    assert browser.get(f"{API}/collections").status_code == 429


def test_one_token_over_its_limit_leaves_its_owners_other_tokens_working(api, employee, employee_token, settings, clock):
    settings.API_TOKEN_RATE_LIMIT = "2/minute"
    other_token = token_for(employee)
    assert [get(api, "/collections", employee_token).status_code for _ in range(3)] == [200, 200, 429]
    assert get(api, "/collections", other_token).status_code == 200


def test_users_have_separate_limits(api, employee_token, staff_token, settings, clock):
    settings.API_RATE_LIMIT = "1/minute"
    assert get(api, "/collections", employee_token).status_code == 200
    assert get(api, "/collections", employee_token).status_code == 429
    assert get(api, "/collections", staff_token).status_code == 200


def test_asking_has_its_own_lower_limit(api, employee_token, handbook, fake_llm, settings, clock):
    settings.API_ASK_RATE_LIMIT = "1/minute"
    assert ask(api, employee_token).status_code == 200
    refused = ask(api, employee_token)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert Conversation.objects.count() == 1  # the refused question was not recorded
    assert get(api, "/conversations", employee_token).status_code == 200


def test_a_rate_limit_set_to_off_does_not_limit(api, employee_token, settings, clock):
    settings.API_RATE_LIMIT = "off"
    settings.API_TOKEN_RATE_LIMIT = "off"
    assert {get(api, "/collections", employee_token).status_code for _ in range(5)} == {200}


@pytest.mark.parametrize(("text", "count", "seconds"), [("60/minute", 60, 60), ("1000/hour", 1000, 3600), ("5/10s", 5, 10), ("2/day", 2, 86400)])
def test_rate_limits_are_read_as_requests_per_period(text, count, seconds):
    assert throttling.rate_parse(text) == throttling.Rate(count=count, seconds=seconds)


def test_a_rate_limit_that_cannot_be_read_fails_the_system_check(settings):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.API_ASK_RATE_LIMIT = "sixty a minute"
    with pytest.raises(SystemCheckError, match="API_ASK_RATE_LIMIT: 'sixty a minute' is not a rate limit"):
        call_command("check")


# --- Documentation ---------------------------------------------------------------------------------------------------


def test_the_openapi_schema_lists_every_endpoint_and_both_ways_to_authenticate(api, employee):
    api.force_login(employee)
    schema = api.get(f"{API}/openapi.json").json()
    assert {"/api/v1/ask", "/api/v1/conversations/{conversation_id}", "/api/v1/documents", "/api/v1/collections"} <= set(schema["paths"])
    assert set(schema["components"]["securitySchemes"]) == {"BearerToken", "SessionWithCsrf"}


def test_the_docs_page_loads_everything_from_the_portal_itself(api, employee):
    api.force_login(employee)
    page = api.get(f"{API}/docs").content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    assert all(a.startswith("/static/") for a in assets), assets
    for asset in assets:
        served = api.get(asset)
        assert served.status_code == 200, asset
        b"".join(served.streaming_content) if served.streaming else served.content
    settings_json = json.loads(re.search(r'id="swagger-settings">(.*?)</script>', page, re.S).group(1))
    assert settings_json["validatorUrl"] is None  # Swagger UI would otherwise fetch a badge from swagger.io
    assert "<script>" not in page  # behaviour comes from static files only (the page's CSP allows no inline script)


def test_the_docs_page_needs_a_signed_in_user(api, db):
    response = api.get(f"{API}/docs")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
