"""The upload form inside the Django admin, as an admin uses it from the Document changelist."""

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from kb.models import Collection, Document

from .helpers import markdown, process

UPLOAD_URL = reverse("admin:kb_document_upload")


def post_upload(client, *files: tuple[str, bytes], **fields):
    data = {**fields, "files": [SimpleUploadedFile(name, content) for name, content in files]}
    return client.post(UPLOAD_URL, data)


def shown_messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_the_document_changelist_links_to_the_upload_form(admin_client):
    page = admin_client.get(reverse("admin:kb_document_changelist"))
    assert page.status_code == 200
    assert UPLOAD_URL.encode() in page.content


def test_the_upload_form_offers_collections_a_new_name_and_several_files(client, staff_user, collection):
    client.force_login(staff_user)
    page = client.get(UPLOAD_URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert f'<option value="{collection.pk}">Handbook</option>' in html
    assert 'name="new_collection"' in html
    assert '<input type="file" name="files" multiple' in html


def test_a_staff_user_uploads_two_files_which_become_documents_and_are_indexed(client, staff_user, collection):
    client.force_login(staff_user)
    response = post_upload(
        client,
        ("leave.md", markdown("Leave policy", ("Annual leave", "Employees get 25 days of annual leave."))),
        ("travel.txt", b"Book travel through the portal at least two weeks ahead."),
        collection=collection.pk,
    )
    documents = Document.objects.filter(collection=collection).order_by("source_path")
    assert [d.source_path for d in documents] == ["leave.md", "travel.txt"]
    assert response.status_code == 302
    assert response["Location"] == reverse("kb:documents") + f"?batch={documents[0].batch_id}"
    assert shown_messages(response) == ["2 files queued"]
    assert all(d.uploaded_by == staff_user and d.status == Document.Status.QUEUED for d in documents)
    indexed = process(*documents)
    assert [d.status for d in indexed] == [Document.Status.INDEXED] * 2
    assert all(d.chunks.count() >= 1 for d in indexed)


def test_the_message_after_the_upload_appears_on_the_progress_page(client, staff_user, collection):
    client.force_login(staff_user)
    response = post_upload(client, ("a.txt", b"Alpha."), collection=collection.pk)
    page = client.get(response["Location"])
    assert b"1 file queued" in page.content
    assert b"a.txt" in page.content


def test_a_refused_file_is_named_in_the_message_with_its_reason(client, staff_user, collection, settings):
    settings.MAX_UPLOAD_MB = 1
    client.force_login(staff_user)
    response = post_upload(client, ("ok.txt", b"Fine."), ("huge.txt", b"x" * (2**20 + 1)), collection=collection.pk)
    assert shown_messages(response) == ["1 file queued, 1 refused: huge.txt is larger than the 1 MB limit."]
    assert Document.objects.get(source_path="huge.txt").status == Document.Status.FAILED


def test_uploading_the_same_content_again_says_it_is_unchanged(client, staff_user, collection):
    client.force_login(staff_user)
    post_upload(client, ("a.txt", b"Alpha."), collection=collection.pk)
    response = post_upload(client, ("a.txt", b"Alpha."), collection=collection.pk)
    assert shown_messages(response)[-1] == "0 files queued, 1 unchanged (same content already uploaded)"


def test_typing_a_new_collection_name_creates_it_for_the_files(client, staff_user, db):
    client.force_login(staff_user)
    response = post_upload(client, ("budget.txt", b"Budget is due in March."), new_collection="Finance")
    assert response.status_code == 302
    assert [d.source_path for d in Collection.objects.get(name="Finance").documents.all()] == ["budget.txt"]


@pytest.mark.parametrize(
    ("fields", "files", "error"),
    [
        ({}, [("a.txt", b"Alpha.")], "Choose a collection or name a new one."),
        ({"new_collection": "Finance"}, [], "Choose at least one file."),
    ],
)
def test_an_incomplete_form_is_shown_again_with_what_is_missing(client, staff_user, db, fields, files, error):
    client.force_login(staff_user)
    response = post_upload(client, *files, **fields)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not Document.objects.exists()


def test_people_who_are_not_staff_cannot_reach_the_upload_form(client, django_user_model, collection):
    employee = django_user_model.objects.create_user("bob", password="pw-bob-12345")
    for user in (None, employee):
        client.logout()
        if user:
            client.force_login(user)
        assert client.get(UPLOAD_URL).status_code == 302  # to the admin login
        response = post_upload(client, ("a.txt", b"Alpha."), collection=collection.pk)
        assert response.status_code == 302 and reverse("admin:login") in response["Location"]
    assert not Document.objects.exists()
