"""Who may read what, proved from the outside on every page surface and command: a user outside a collection's groups
never sees its passages, titles, files or the answers built from them. The API and the widget have their own tests."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import AnonymousUser, Permission
from django.core.management import CommandError, call_command
from django.urls import reverse

from chat.models import Message
from kb import vectorstore
from kb.models import Collection, Document
from kb.selectors import collections_readable, passages_search

from .test_chat_pages import ask as ask_page
from .test_chat_pages import events_of
from .test_evaluate import write_dataset
from .permission_flows import SALARY_QUESTION, assert_no_trace
from .permission_flows import erin, fake_llm_reply, hana, hr_group, library  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


def signed_in_as(client, user):
    client.force_login(user)
    return client


# --- The rule ---------------------------------------------------------------------------------------------------


def test_everyone_collections_are_read_by_all_signed_in_users_and_group_collections_by_members(library, erin, hana):
    assert collections_readable(user=erin) == [library["handbook"].pk]
    assert sorted(collections_readable(user=hana)) == sorted([library["handbook"].pk, library["hr"].pk])


def test_a_superuser_reads_every_collection_and_an_inactive_user_none(library, django_user_model, hana):
    root = django_user_model.objects.create_superuser("root", password="pw-root-12345")
    assert len(collections_readable(user=root)) == 2
    hana.is_active = False
    hana.save()
    assert collections_readable(user=hana) == []


def test_anonymous_visitors_read_only_public_collections(library):
    assert collections_readable(user=AnonymousUser()) == []
    library["handbook"].public = True
    library["handbook"].save()
    assert collections_readable(user=AnonymousUser()) == [library["handbook"].pk]


def test_search_filters_inside_the_vector_store_not_after_it(library, erin, monkeypatch):
    seen = []
    real_search = vectorstore.points_search
    monkeypatch.setattr(vectorstore, "points_search", lambda **kw: seen.append(kw["collection_ids"]) or real_search(**kw))

    passages = passages_search(user=erin, query=SALARY_QUESTION)

    assert seen == [[library["handbook"].pk]]
    assert all(p.collection_id == library["handbook"].pk for p in passages)


# --- The chat page ------------------------------------------------------------------------------------------------


def test_a_user_outside_the_group_gets_no_trace_of_its_documents_in_a_streamed_answer(client, library, erin, fake_llm):
    response = ask_page(signed_in_as(client, erin), SALARY_QUESTION)

    body = b"".join(response.streaming_content).decode()
    assert_no_trace(body)
    assert "Band 7" not in json.dumps(fake_llm.messages)  # nor was the model shown the passage


def test_a_group_member_gets_the_group_documents_as_sources(client, library, hana, fake_llm):
    events = events_of(ask_page(signed_in_as(client, hana), SALARY_QUESTION))

    sources = next(data for event, data in events if event == "sources")["passages"]
    assert sources[0]["title"] == "Salary bands 2026"


def test_joining_a_group_applies_to_the_next_question_without_reindexing(client, library, erin, hr_group, fake_llm):
    signed_in_as(client, erin)
    points_before = vectorstore.points_count()
    assert_no_trace(b"".join(ask_page(client, SALARY_QUESTION).streaming_content).decode())

    erin.groups.add(hr_group)

    events = events_of(ask_page(client, SALARY_QUESTION))
    assert next(d for e, d in events if e == "sources")["passages"][0]["title"] == "Salary bands 2026"
    assert vectorstore.points_count() == points_before


def test_an_earlier_answer_from_a_collection_the_user_left_is_withheld_on_the_conversation_page(
    client, library, hana, hr_group, fake_llm
):
    signed_in_as(client, hana)
    events = events_of(ask_page(client, SALARY_QUESTION))
    conversation_id = next(d for e, d in events if e == "start")["conversation_id"]
    page = reverse("chat:conversation", args=[conversation_id])
    assert "Salary bands 2026" in client.get(page).content.decode()

    hana.groups.remove(hr_group)

    html = client.get(page).content.decode()
    assert_no_trace(html)
    assert "documents you can no longer read" in html
    assert Message.objects.filter(role="assistant", text__contains="91,500").exists()  # the record itself is kept


# --- Passage page and original file -------------------------------------------------------------------------------


def test_the_passage_page_and_the_file_of_a_group_document_are_not_found_for_outsiders(client, library, erin, hana):
    chunk = library["salaries"].chunks.first()
    passage_url = reverse("kb:passage", args=[chunk.pk])
    file_url = reverse("kb:document_file", args=[library["salaries"].pk])

    signed_in_as(client, erin)
    for url in (passage_url, file_url):
        response = client.get(url)
        assert response.status_code == 404
        assert_no_trace(response.content.decode(errors="replace"))

    signed_in_as(client, hana)
    assert "Band 7 engineers" in client.get(passage_url).content.decode()
    assert client.get(file_url).status_code == 200


# --- Commands -----------------------------------------------------------------------------------------------------


def test_ask_as_a_user_outside_the_group_finds_nothing_from_it(library, erin, fake_llm, capsys):
    call_command("ask", SALARY_QUESTION, "--user", "erin", "--json")

    result = json.loads(capsys.readouterr().out)
    assert all(p["title"] != "Salary bands 2026" for p in result["passages"])
    assert_no_trace(json.dumps(result))


def test_a_question_asked_from_the_command_line_is_recorded_in_the_audit_log(library, hana, fake_llm, capsys):
    from audit.models import AuditEvent

    call_command("ask", SALARY_QUESTION, "--user", "hana", "--json")

    (event,) = AuditEvent.objects.filter(action=AuditEvent.Action.QUESTION_ASKED)
    assert event.actor == hana and event.via == AuditEvent.Via.SYSTEM and event.detail["question"] == SALARY_QUESTION


def test_ask_as_a_member_finds_the_group_document(library, hana, fake_llm, capsys):
    call_command("ask", SALARY_QUESTION, "--user", "hana", "--json")

    assert json.loads(capsys.readouterr().out)["passages"][0]["title"] == "Salary bands 2026"


def test_ask_names_a_hidden_collection_as_missing_without_listing_it(library, erin):
    with pytest.raises(CommandError) as refused:
        call_command("ask", SALARY_QUESTION, "--user", "erin", "--collection", "HR salaries")

    message = str(refused.value)
    assert message.startswith("No collection named HR salaries (collections: Handbook)")


def test_ask_refuses_an_unknown_or_inactive_user(library, erin):
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        call_command("ask", SALARY_QUESTION, "--user", "nobody")
    erin.is_active = False
    erin.save()
    with pytest.raises(CommandError, match="inactive"):
        call_command("ask", SALARY_QUESTION, "--user", "erin")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_evaluate_as_a_user_who_may_not_read_the_dataset_collection_retrieves_nothing(tmp_path, capsys, django_user_model):
    root = write_dataset(tmp_path / "tiny")
    call_command("evaluate", str(root), "--json", "--modes", "hybrid")
    assert json.loads(capsys.readouterr().out)["retrieval"][0]["recall"] == 1.0
    django_user_model.objects.create_user("erin", password="pw-erin-12345")
    evaluation_collection = Collection.objects.get(name__startswith="eval-tiny")
    evaluation_collection.access = Collection.Access.GROUPS
    evaluation_collection.save()

    call_command("evaluate", str(root), "--json", "--modes", "hybrid", "--user", "erin")

    assert json.loads(capsys.readouterr().out)["retrieval"][0]["recall"] == 0.0


# --- Admin ------------------------------------------------------------------------------------------------------


def test_the_admin_refuses_a_group_only_collection_without_a_group(client, django_user_model):
    admin = django_user_model.objects.create_superuser("root", password="pw-root-12345")
    client.force_login(admin)

    response = client.post(
        reverse("admin:kb_collection_add"),
        {"name": "Finance", "slug": "finance", "description": "", "access": "groups", "groups": []},
    )

    assert response.status_code == 200
    assert "Choose at least one group" in response.content.decode()
    assert not Collection.objects.filter(name="Finance").exists()


# --- Staff pages ----------------------------------------------------------------------------------------------------


def test_staff_manage_only_the_documents_of_collections_they_may_read(client, library, django_user_model):
    staff = django_user_model.objects.create_user("sam", password="pw-sam-12345", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_document", "delete_document"]))
    signed_in_as(client, staff)

    assert_no_trace(client.get(reverse("kb:documents")).content.decode())
    assert_no_trace(client.get(reverse("admin:kb_document_changelist")).content.decode())
    assert "Leave policy" in client.get(reverse("kb:documents")).content.decode()
    assert client.post(reverse("kb:document_delete", args=[library["salaries"].pk])).status_code == 404
    assert Document.objects.filter(pk=library["salaries"].pk).exists()
