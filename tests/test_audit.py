"""The audit log: questions, sign-ins, admin actions and document changes are recorded; old events are purged."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from audit import tasks
from audit.models import AuditEvent
from kb.models import Collection, Document
from tests.helpers import markdown, process, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def employee(django_user_model):
    return django_user_model.objects.create_user("erin", password="pw-erin-12345")


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("root", password="pw-root-12345")


def events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def test_a_question_asked_in_the_chat_page_is_recorded_with_asker_address_and_text(client, employee, fake_llm):
    client.force_login(employee)

    response = client.post("/chat/ask", {"question": "How many leave hours carry over?"}, HTTP_ACCEPT="text/event-stream")
    b"".join(response.streaming_content)

    (event,) = events(AuditEvent.Action.QUESTION_ASKED)
    assert event.actor == employee and event.actor_name == "erin"
    assert event.detail["question"] == "How many leave hours carry over?"
    assert event.ip == "127.0.0.1" and event.via == AuditEvent.Via.WEB
    assert event.target.startswith("chat.conversation:")


def test_signing_in_and_out_with_the_form_is_recorded(client, employee):
    client.post("/accounts/login/", {"username": "erin", "password": "pw-erin-12345"})
    client.post("/accounts/logout/")

    assert [e.action for e in AuditEvent.objects.order_by("id")] == ["auth.login", "auth.logout"]
    assert all(e.actor == employee and e.ip == "127.0.0.1" for e in AuditEvent.objects.all())


def test_a_refused_sign_in_records_the_name_typed_and_never_the_password(client, employee):
    client.post("/accounts/login/", {"username": "erin", "password": "wrong-guess-42"})

    (event,) = events(AuditEvent.Action.LOGIN_FAILED)
    assert event.actor is None and event.actor_name == "erin"
    assert "wrong-guess-42" not in str(event.detail)


def test_an_object_added_in_the_django_admin_is_recorded(client, admin_user):
    client.force_login(admin_user)

    response = client.post("/admin/auth/group/add/", {"name": "Finance"})

    assert response.status_code == 302
    (event,) = events(AuditEvent.Action.ADMIN_ADDITION)
    group = Group.objects.get(name="Finance")
    assert event.actor == admin_user and event.via == AuditEvent.Via.ADMIN
    assert event.target == f"auth.group:{group.pk} Finance"


def test_deleting_several_objects_with_the_admin_action_records_each_one(client, admin_user):
    groups = [Group.objects.create(name=name) for name in ("Finance", "Legal", "Sales")]
    client.force_login(admin_user)

    response = client.post(
        "/admin/auth/group/",
        {"action": "delete_selected", "_selected_action": [g.pk for g in groups], "post": "yes"},
    )

    assert response.status_code == 302 and not Group.objects.exists()
    deleted = events(AuditEvent.Action.ADMIN_DELETION)
    assert sorted(e.target.split(" ", 1)[1] for e in deleted) == ["Finance", "Legal", "Sales"]
    assert all(e.actor == admin_user for e in deleted)


def test_a_document_uploaded_then_deleted_from_the_documents_page_is_recorded(client, collection, staff_user):
    result = upload(collection, ("leave.md", markdown("Leave", ("Annual", "240 hours carry over."))), user=staff_user)
    document = result.queued[0]
    client.force_login(staff_user)

    client.post(f"/documents/{document.pk}/delete", {})

    (uploaded,) = events(AuditEvent.Action.DOCUMENT_UPLOADED)
    (deleted,) = events(AuditEvent.Action.DOCUMENT_DELETED)
    assert not Document.objects.filter(pk=document.pk).exists()
    assert uploaded.actor == staff_user and uploaded.target == f"kb.document:{document.pk} leave"
    assert deleted.actor == staff_user and deleted.target == uploaded.target and deleted.via == AuditEvent.Via.WEB


def test_the_retention_task_deletes_old_events_and_blanks_old_question_text_first(settings, employee):
    settings.AUDIT_RETENTION_DAYS = 90
    settings.AUDIT_QUESTION_TEXT_DAYS = 30
    now = timezone.now()

    def event(days_ago, action=AuditEvent.Action.QUESTION_ASKED, question="What is the parental leave?"):
        return AuditEvent.objects.create(
            time=now - timedelta(days=days_ago), action=action, actor=employee, detail={"question": question}
        )

    expired, old_question, recent_question = event(91), event(31), event(29)
    old_login = event(45, action=AuditEvent.Action.LOGIN, question="kept: not a question event")

    assert tasks.purge() == {"deleted": 1, "redacted": 1}

    assert not AuditEvent.objects.filter(pk=expired.pk).exists()
    old_question.refresh_from_db()
    assert "question" not in old_question.detail and old_question.detail["question_removed"] is True
    assert old_question.actor == employee  # who asked and when stay until the retention ends
    recent_question.refresh_from_db()
    old_login.refresh_from_db()
    assert recent_question.detail["question"] == "What is the parental leave?"
    assert old_login.detail["question"] == "kept: not a question event"
    assert tasks.purge() == {"deleted": 0, "redacted": 0}  # running it twice changes nothing


def test_beat_runs_the_retention_task_every_day():
    from portal.celery import app

    entries = [e for e in app.conf.beat_schedule.values() if e["task"] == "audit.purge"]
    assert [e["schedule"] for e in entries] == [24 * 3600.0]
    assert "audit.purge" in app.tasks


def test_the_audit_admin_filters_events_and_allows_no_change(client, admin_user, employee):
    AuditEvent.objects.create(action=AuditEvent.Action.LOGIN, actor=employee, actor_name="erin")
    AuditEvent.objects.create(action=AuditEvent.Action.LOGOUT, actor=employee, actor_name="erin")
    client.force_login(admin_user)

    listing = client.get("/admin/audit/auditevent/", {"action": "auth.login", "actor__id__exact": employee.pk})

    assert listing.status_code == 200
    assert list(listing.context["cl"].queryset.values_list("action", "actor_name")) == [("auth.login", "erin")]
    event = AuditEvent.objects.get(action=AuditEvent.Action.LOGIN, actor=employee)
    assert client.get("/admin/audit/auditevent/add/").status_code == 403
    assert client.post(f"/admin/audit/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    client.post(f"/admin/audit/auditevent/{event.pk}/change/", {"action": "auth.logout"})
    event.refresh_from_db()
    assert event.action == AuditEvent.Action.LOGIN


@pytest.mark.django_db(transaction=True)
def test_a_question_streamed_by_the_asgi_server_is_recorded_with_the_askers_address(employee, fake_llm):
    # Under ASGI the answer runs in a thread of its own (chat.views._sse_async); the origin must follow it there.
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    async def ask() -> bytes:
        client = AsyncClient()
        await client.aforce_login(employee)
        response = await client.post("/chat/ask", {"question": "Where is the canteen?"}, headers={"accept": "text/event-stream"})
        return b"".join([chunk async for chunk in response.streaming_content])

    assert b"event: done" in async_to_sync(ask)()

    (event,) = events(AuditEvent.Action.QUESTION_ASKED)
    assert event.actor == employee and event.ip == "127.0.0.1" and event.via == AuditEvent.Via.WEB


def test_retrying_a_failed_document_from_the_documents_page_is_recorded(client, collection, staff_user):
    (document,) = upload(collection, ("blob.bin", b"\x00\x01\x02\xff" * 64), user=staff_user).queued
    process(document)
    client.force_login(staff_user)

    client.post(f"/documents/{document.pk}/retry", {})

    (retried,) = events(AuditEvent.Action.DOCUMENT_RETRIED)
    assert retried.actor == staff_user and retried.target == f"kb.document:{document.pk} blob"
    assert Document.objects.get(pk=document.pk).status == Document.Status.QUEUED
