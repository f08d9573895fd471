"""The upload page and the documents page, as an admin uses them."""

from django.urls import reverse

from kb.models import Collection, Document

from .helpers import markdown, process


def post_files(client, collection, *files, json=True):
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = {"collection": collection.pk, "files": [SimpleUploadedFile(name, content) for name, content in files]}
    headers = {"Accept": "application/json"} if json else {}
    return client.post(reverse("ingestion:upload"), data, headers=headers)


def test_an_admin_uploads_several_files_at_once_and_is_sent_to_their_progress(client, staff_user, collection):
    client.force_login(staff_user)
    response = post_files(client, collection, ("a.md", markdown("A", ("One", "Alpha text."))), ("b.txt", b"Beta text."))
    assert response.status_code == 200
    body = response.json()
    assert body["queued"] == 2 and body["rejected"] == 0
    page = client.get(body["redirect"])
    assert page.status_code == 200
    assert b"a.md" in page.content and b"b.txt" in page.content
    assert page.content.count(b'data-status="queued"') == 2


def test_the_upload_form_also_works_without_javascript(client, staff_user, collection):
    client.force_login(staff_user)
    response = post_files(client, collection, ("a.txt", b"Alpha."), json=False)
    assert response.status_code == 302 and "?batch=" in response["Location"]


def test_an_upload_can_create_a_new_collection(client, staff_user, db):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(staff_user)
    response = client.post(
        reverse("ingestion:upload"),
        {"new_collection": "Finance", "files": [SimpleUploadedFile("budget.txt", b"Budget is due in March.")]},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200
    assert Collection.objects.get(name="Finance").documents.count() == 1


def test_an_upload_without_files_gets_a_clear_error(client, staff_user, collection):
    client.force_login(staff_user)
    response = client.post(reverse("ingestion:upload"), {"collection": collection.pk}, headers={"Accept": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"] == "Choose at least one file."


def test_live_status_reports_each_document_and_the_batch_with_progress(client, staff_user, collection):
    client.force_login(staff_user)
    body = post_files(client, collection, ("good.txt", b"Remote work needs manager approval."), ("empty.txt", b"")).json()
    batch = body["batch"]
    process(*Document.objects.filter(batch_id=batch))
    ids = ",".join(str(pk) for pk in Document.objects.values_list("pk", flat=True))
    status = client.get(reverse("kb:documents_status"), {"ids": ids, "batch": batch}).json()
    by_path = {d["source_path"]: d for d in status["documents"]}
    assert by_path["good.txt"]["status"] == "indexed" and by_path["good.txt"]["progress"] == 1.0
    assert by_path["empty.txt"]["status"] == "failed" and "empty.txt" in by_path["empty.txt"]["error"]
    assert status["batch"]["done"] is True
    assert status["batch"]["indexed"] == 1 and status["batch"]["failed"] == 1 and status["batch"]["fraction"] == 1.0


def test_a_failed_document_shows_its_reason_and_a_retry_button(client, staff_user, collection):
    client.force_login(staff_user)
    post_files(client, collection, ("empty.txt", b""))
    process(*Document.objects.all())
    page = client.get(reverse("kb:documents"))
    document = Document.objects.get()
    assert document.error.encode() in page.content
    assert reverse("kb:document_retry", args=[document.pk]).encode() in page.content


def test_employees_who_are_not_admins_cannot_upload_or_see_the_documents_page(client, django_user_model, collection):
    employee = django_user_model.objects.create_user("bob", password="pw-bob-12345")
    client.force_login(employee)
    assert client.get(reverse("ingestion:upload")).status_code == 302
    assert client.get(reverse("kb:documents")).status_code == 302
    assert post_files(client, collection, ("a.txt", b"x")).status_code == 302
    assert Document.objects.count() == 0


def test_healthz_answers_for_load_balancers(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json()["database"] == "ok"
