"""Duplicates and conflicts: documents ingested through the upload service and the embedded worker, checked by the
background similarity task, and shown side by side to an admin who can retire one or dismiss a false alarm."""

import pytest

from health.duplicates import facts_of, passages_contradiction
from health.models import ConflictPair, SimilarityCheck
from ingestion.worker import EmbeddedWorker
from kb.models import Document

from .helpers import markdown, upload, wait_for

LEAVE_2024 = markdown(
    "Leave policy",
    ("Annual leave", "You can carry over a maximum of 240 annual leave hours into the next leave year."),
    ("Sick leave", "Sick leave accrues at four hours per pay period and never expires."),
)
LEAVE_2025 = markdown(
    "Leave rules for employees",
    ("Annual leave", "You can carry over a maximum of 200 annual leave hours into the next leave year."),
    ("Sick leave", "Sick leave accrues at four hours per pay period and never expires."),
)
TRAVEL = markdown(
    "Travel policy",
    ("Booking", "Book flights and hotels through the travel desk at least fourteen days before you leave."),
    ("Expenses", "Keep every receipt and file your expense report within one month of your return."),
)
TRAVEL_COPY = markdown(
    "Travel policy",
    ("Booking", "Book your flights and hotels through the travel desk at least fourteen days before you leave."),
    ("Expenses", "Keep every receipt and file your expense report within one month of your return."),
)
PARKING = markdown("Parking", ("Weekends", "The garage under building C is open to every visitor on Saturdays and Sundays."))


@pytest.fixture
def worker(transactional_db):
    with EmbeddedWorker() as running:
        yield running


def ingest(collection, *files):
    """Upload through the service; wait until the worker has indexed every file and checked it against the rest."""
    documents = upload(collection, *files).queued

    def checked():
        fresh = [Document.objects.get(pk=d.pk) for d in documents]
        return all(
            d.status == Document.Status.INDEXED
            and SimilarityCheck.objects.filter(document=d, version=d.indexed_version).exists()
            for d in fresh
        ) and fresh

    return wait_for(checked, timeout=180, message="indexing and the similarity check")


@pytest.fixture
def staff(admin_client):
    return admin_client


def test_two_documents_stating_different_numbers_are_shown_as_a_conflict_with_both_numbers_highlighted(collection, worker, staff):
    ingest(collection, ("hr/leave-2024.md", LEAVE_2024))
    ingest(collection, ("hr/leave-2025.md", LEAVE_2025))

    page = staff.get("/health/duplicates/").content.decode()

    conflicts = page.split('id="conflicts-title"')[1].split('id="duplicates-title"')[0]
    assert "Leave policy" in conflicts and "Leave rules for employees" in conflicts
    assert "<mark>240</mark>" in conflicts and "<mark>200</mark>" in conflicts
    assert "<strong>240</strong> against <strong>200</strong>" in conflicts or "<strong>200</strong> against <strong>240</strong>" in conflicts


def test_a_lightly_edited_copy_is_a_near_duplicate_and_an_unrelated_document_is_not_listed(collection, worker, staff):
    ingest(collection, ("travel.md", TRAVEL), ("parking.md", PARKING))
    ingest(collection, ("old/travel-copy.md", TRAVEL_COPY))

    page = staff.get("/health/duplicates/").content.decode()

    near = page.split('id="duplicates-title"')[1]
    assert "travel.md" in near and "old/travel-copy.md" in near
    assert "of the passages of both documents are near-identical" in near
    assert "<mark>your</mark>" in near  # the word that differs
    assert "Parking" not in page and "parking.md" not in page
    assert "No conflicting passages found." in page


def test_retiring_one_document_of_a_conflict_deletes_it_and_the_conflict_is_gone(collection, worker, staff):
    ingest(collection, ("hr/leave-2024.md", LEAVE_2024))
    [newer] = ingest(collection, ("hr/leave-2025.md", LEAVE_2025))

    response = staff.post(f"/health/duplicates/documents/{newer.pk}/retire", follow=True)

    page = response.content.decode()
    assert "was retired" in page
    assert not Document.objects.filter(pk=newer.pk).exists()
    assert "No conflicting passages found." in page and "No near-duplicate documents found." in page
    assert ConflictPair.objects.count() == 0


def test_a_dismissed_conflict_is_not_shown_again(collection, worker, staff):
    ingest(collection, ("hr/leave-2024.md", LEAVE_2024))
    ingest(collection, ("hr/leave-2025.md", LEAVE_2025))
    pair = ConflictPair.objects.get()

    staff.post(f"/health/duplicates/conflict/{pair.pk}/dismiss")

    page = staff.get("/health/duplicates/").content.decode()
    conflicts = page.split('id="conflicts-title"')[1].split('id="duplicates-title"')[0]
    assert "No conflicting passages found." in conflicts
    assert "Leave policy" not in conflicts


def test_a_new_version_that_agrees_clears_the_stale_conflict(collection, worker, staff):
    ingest(collection, ("hr/leave-2024.md", LEAVE_2024))
    ingest(collection, ("hr/leave-2025.md", LEAVE_2025))
    assert ConflictPair.objects.count() == 1

    [fixed] = ingest(collection, ("hr/leave-2025.md", LEAVE_2025.replace(b"200 annual", b"240 annual")))

    assert fixed.version == 2
    page = staff.get("/health/duplicates/").content.decode()
    assert "No conflicting passages found." in page


def test_the_duplicates_page_is_for_staff_only(client, django_user_model):
    django_user_model.objects.create_user("erin", password="pw-erin-12345")
    client.login(username="erin", password="pw-erin-12345")

    response = client.get("/health/duplicates/")

    assert response.status_code == 302 and "/login" in response["Location"]


def test_a_documents_vectors_read_from_the_embedded_mirror_equal_the_stores_own(collection, monkeypatch):
    import numpy as np

    from kb import vectorstore

    from .helpers import upload_and_process

    [document] = upload_and_process(collection, ("leave.md", LEAVE_2024))
    mirrored = vectorstore.points_dense(document_id=document.pk, version=1)
    with monkeypatch.context() as patch:  # the path a Qdrant server takes: scroll the store
        patch.setattr(vectorstore, "is_embedded", lambda: False)
        stored = vectorstore.points_dense(document_id=document.pk, version=1)

    assert set(mirrored) == set(stored) == {str(p) for p in document.chunks.values_list("point_id", flat=True)}
    for point_id, vector in stored.items():
        unit = np.asarray(vector) / np.linalg.norm(vector)
        assert np.allclose(mirrored[point_id], unit, atol=1e-5)


# --- The comparison of facts, on its own -------------------------------------------------------------------------


def test_a_different_number_next_to_the_same_word_is_a_contradiction():
    a, b = "Carry over up to 240 hours of leave.", "Carry over up to 200 hours of leave."
    found = passages_contradiction(text_a=a, text_b=b, document_a_text=a, document_b_text=b)
    assert [f.text for f in found.facts_a] == ["240"] and [f.text for f in found.facts_b] == ["200"]


def test_numbers_next_to_different_words_are_not_a_contradiction():
    a, b = "See section 4 for the leave rules.", "Leave rules are explained over 12 pages."
    assert passages_contradiction(text_a=a, text_b=b, document_a_text=a, document_b_text=b) is None


def test_a_fact_the_other_document_states_elsewhere_is_not_a_contradiction():
    a, b = "Requests go to Jane Smith.", "Requests go to John Doe."
    assert passages_contradiction(text_a=a, text_b=b, document_a_text=a, document_b_text=b + " Jane Smith signs them.") is None


def test_dates_and_names_are_read_from_a_passage():
    facts = facts_of("Send it to Jane Smith by 1 March 2025 or 2025-03-15.")
    assert [(f.kind, f.text) for f in facts] == [("date", "1 March 2025"), ("date", "2025-03-15"), ("name", "Jane Smith")]
