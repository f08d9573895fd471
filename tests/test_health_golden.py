"""Golden questions: recorded from a thumbs-down given through the feedback endpoint, rerun by `evaluate --golden`
against the real index with a scripted model server, compared run to run, exported and imported as a dataset."""

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from chat import evaluation, services
from chat.models import UnansweredQuestion
from health.models import GoldenQuestion, GoldenRun
from ingestion.services import IncomingFile, documents_upload
from ingestion.worker import EmbeddedWorker
from kb.models import Collection

from .helpers import markdown, upload_and_process, wait_for

pytestmark = pytest.mark.django_db

LEAVE = markdown(
    "Leave policy",
    ("Annual leave", "You can carry over a maximum of 240 annual leave hours into the next leave year."),
    ("Contractors", "Contractors do not accrue annual leave; their agency sets their time off."),
)
QUESTION = "How many leave hours can I carry over?"


@pytest.fixture
def leave(collection):
    [document] = upload_and_process(collection, ("hr/leave.md", LEAVE))
    return document


@pytest.fixture
def employee(django_user_model):
    return django_user_model.objects.create_user("erin", password="pw-erin-12345")


@pytest.fixture
def thumbs_down(client, employee, leave, fake_llm):
    """An employee asks, gets a wrong answer and rates it down through the feedback endpoint: the answer's id."""
    fake_llm.add_replies(["You can carry over 80 hours [1]."])
    conversation = services.conversation_create(user=employee)
    events = list(services.answer_question(user=employee, conversation=conversation, text=QUESTION))
    message_id = events[0].data["message_id"]
    client.force_login(employee)
    response = client.post(f"/chat/messages/{message_id}/feedback", {"helpful": "false", "comment": "It is 240 hours."})
    assert response.status_code in (200, 302)
    client.logout()
    return message_id


@pytest.fixture
def golden_from_feedback(admin_client, thumbs_down, leave):
    """The admin records the right passage and the reference answer from that thumbs-down, through the form."""
    chunk = leave.chunks.get(text__contains="240 annual leave hours")
    response = admin_client.post(
        "/health/golden/new/",
        {"message": thumbs_down, "question": QUESTION, "document": leave.pk, "chunk": chunk.pk, "reference_answer": "240 hours"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    return GoldenQuestion.objects.get()


def test_the_form_opened_from_a_thumbs_down_shows_the_question_the_answer_and_the_comment(admin_client, thumbs_down):
    page = admin_client.get(f"/health/golden/new/?message={thumbs_down}").content.decode()

    assert QUESTION in page
    assert "You can carry over 80 hours" in page
    assert "It is 240 hours." in page


def test_the_form_opened_from_a_gap_shows_the_question_that_found_nothing(admin_client, employee, leave, fake_llm):
    list(services.answer_question(user=employee, conversation=services.conversation_create(user=employee), text="Who won the 1998 World Cup final?"))
    gap = UnansweredQuestion.objects.get()

    page = admin_client.get(f"/health/golden/new/?unanswered={gap.pk}").content.decode()

    assert "Who won the 1998 World Cup final?" in page


def test_the_picker_finds_a_document_by_a_word_of_its_title_and_lists_its_passages(admin_client, leave):
    found = admin_client.get("/health/golden/picker/?q=leave").content.decode()
    passages = admin_client.get(f"/health/golden/picker/?document={leave.pk}").content.decode()

    assert f'name="document" value="{leave.pk}"' in found and "hr/leave.md" in found
    assert 'name="chunk"' in passages and "240 annual leave hours" in passages


def test_a_golden_question_recorded_from_a_thumbs_down_keeps_its_source_and_reference(golden_from_feedback, leave, thumbs_down):
    golden = golden_from_feedback
    assert golden.question == QUESTION and golden.reference_answer == "240 hours"
    assert golden.document_ids == [leave.pk]
    assert "240 annual leave hours" in golden.evidence[0]
    assert golden.from_message_id == thumbs_down


def test_a_passage_that_is_not_in_the_chosen_document_is_refused_with_a_reason(admin_client, collection, leave):
    [other] = upload_and_process(collection, ("travel.md", markdown("Travel", ("Booking", "Book trains early."))))
    response = admin_client.post(
        "/health/golden/new/",
        {"question": QUESTION, "document": leave.pk, "chunk": other.chunks.first().pk, "reference_answer": "240 hours"},
    )
    assert response.status_code == 200
    assert "not part of the chosen document" in response.content.decode()
    assert not GoldenQuestion.objects.exists()


def test_evaluate_golden_reports_recall_and_correctness_and_the_change_after_a_reupload(golden_from_feedback, collection, fake_llm, capsys):
    fake_llm.add_replies(["You can carry over 240 hours [1]."])
    call_command("evaluate", "--golden")
    first = capsys.readouterr().out
    assert "recall   1.0000" in first and "correct  1.0000" in first
    assert "First run" in first

    # The policy is re-uploaded with another figure: the evidence is gone and the answer no longer matches.
    upload_and_process(collection, ("hr/leave.md", LEAVE.replace(b"240 annual", b"200 annual")))
    fake_llm.add_replies(["You can carry over 200 hours [1].", "no"])  # the answer, then the judge's verdict
    call_command("evaluate", "--golden")
    second = capsys.readouterr().out

    assert "recall   0.0000  (-1.0000 since the last run)" in second
    assert "correct  0.0000  (-1.0000 since the last run)" in second
    assert "source found, answer correct -> source missed, answer wrong" in second


def test_the_golden_page_shows_the_last_run_and_its_change_since_the_one_before(admin_client, golden_from_feedback, collection, fake_llm):
    fake_llm.add_replies(["You can carry over 240 hours [1]."])
    call_command("evaluate", "--golden", "--json")
    upload_and_process(collection, ("hr/leave.md", LEAVE.replace(b"240 annual", b"200 annual")))
    fake_llm.add_replies(["You can carry over 200 hours [1].", "no"])
    call_command("evaluate", "--golden", "--json")

    page = admin_client.get("/health/golden/").content.decode()

    assert '<span class="delta down">(-1.00)</span>' in page
    assert "source found, answer correct → <strong>source missed, answer wrong</strong>" in page
    assert "<strong>missed</strong>" in page and "<strong>wrong</strong>" in page


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_run_button_runs_the_questions_in_the_worker_and_reports_its_progress(admin_client, golden_from_feedback, fake_llm):
    fake_llm.add_replies(["You can carry over 240 hours [1]."])

    with EmbeddedWorker():
        response = admin_client.post("/health/golden/runs/")
        run = GoldenRun.objects.get()
        wait_for(lambda: GoldenRun.objects.get(pk=run.pk).status == GoldenRun.Status.DONE, timeout=120, message="the run")

    assert response.status_code == 302 and response["Location"].endswith(f"#run-{run.pk}")
    status = admin_client.get(f"/health/golden/runs/{run.pk}/status.json").json()
    assert status == {"id": run.pk, "status": "done", "completed": 1, "total": 1, "progress": 1.0, "error": ""}
    page = admin_client.get("/health/golden/").content.decode()
    assert "recall <strong>1.00</strong>" in page and "correct <strong>1.00</strong>" in page


def test_evaluate_golden_without_golden_questions_says_how_to_add_them():
    with pytest.raises(CommandError, match="no golden questions yet"):
        call_command("evaluate", "--golden")


def test_the_run_button_with_no_golden_questions_says_so_and_starts_nothing(admin_client):
    response = admin_client.post("/health/golden/runs/", follow=True)

    assert "There are no golden questions to run yet." in response.content.decode()
    assert not GoldenRun.objects.exists()


def test_an_export_imports_back_into_the_same_questions(admin_client, golden_from_feedback, leave):
    exported = admin_client.get("/health/golden/export.jsonl").content
    record = json.loads(exported.decode().splitlines()[0])
    assert record["doc_ids"] == ["hr/leave.md"] and record["answers"] == ["240 hours"] and record["question"] == QUESTION
    GoldenQuestion.objects.all().delete()

    response = admin_client.post("/health/golden/import", {"file": _file("questions.jsonl", exported)}, follow=True)

    assert "Imported 1 new and updated 0" in response.content.decode()
    golden = GoldenQuestion.objects.get()
    assert (golden.question, golden.reference_answer, golden.document_ids) == (QUESTION, "240 hours", [leave.pk])
    assert golden.evidence == record["evidence"]
    assert list(golden.collections.values_list("pk", flat=True)) == [leave.collection_id]


def test_importing_the_same_export_twice_updates_instead_of_duplicating(admin_client, golden_from_feedback):
    exported = admin_client.get("/health/golden/export.jsonl").content

    response = admin_client.post("/health/golden/import", {"file": _file("questions.jsonl", exported)}, follow=True)

    assert "Imported 0 new and updated 1" in response.content.decode()
    assert GoldenQuestion.objects.count() == 1


def test_a_shared_datasets_questions_import_when_their_documents_exist(admin_client, tmp_path):
    corpus = Collection.objects.create(name="eval-mini")
    records = [{"id": "doc-1", "title": "Parking", "text": "Staff park for free in garage C on weekends."},
               {"id": "doc-2", "title": "Canteen", "text": "The canteen opens at 8 am and closes at 3 pm."}]
    documents_upload(collection=corpus, files=[IncomingFile(name=r["id"], data=r["text"].encode(), title=r["title"]) for r in records])
    questions = [
        {"id": "q1", "question": "Where can I park at the weekend?", "doc_ids": ["doc-1"], "evidence": ["garage C"], "answers": ["garage C"]},
        {"id": "q2", "question": "When does the canteen open?", "doc_ids": ["Canteen"], "evidence": [], "answers": ["8 am"]},
        {"id": "q3", "question": "Is there a gym?", "doc_ids": ["doc-9"], "evidence": [], "answers": ["no"]},
    ]
    data = "\n".join(json.dumps(q) for q in questions).encode()

    response = admin_client.post("/health/golden/import", {"file": _file("questions.jsonl", data), "collection": corpus.pk}, follow=True)

    page = response.content.decode()
    assert "Imported 2 new and updated 0" in page
    assert "line 3: no document “doc-9”" in page
    imported = {g.external_id: g for g in GoldenQuestion.objects.all()}
    assert imported["q1"].sources[0]["source_path"] == "doc-1" and imported["q1"].evidence == ["garage C"]
    assert imported["q2"].sources[0]["title"] == "Canteen"  # matched by title


HANDBOOK = Path(__file__).resolve().parents[2] / "shared" / "eval" / "handbook"


@pytest.mark.skipif(not (HANDBOOK / "questions.jsonl").is_file(), reason="the shared handbook dataset is not on this machine")
def test_the_shared_handbooks_questions_import_for_the_documents_that_were_uploaded(admin_client):
    dataset = evaluation.dataset_load(HANDBOOK)
    uploaded = sorted({q.doc_ids[0] for q in dataset.questions if q.doc_ids})[:2]
    corpus = Collection.objects.create(name="handbook")
    documents_upload(collection=corpus, files=[IncomingFile(name=p, data=(HANDBOOK / "corpus" / p).read_bytes()) for p in uploaded])
    importable = [q for q in dataset.questions if set(q.doc_ids) <= set(uploaded) and (q.doc_ids or q.answers == ("NOT_IN_CORPUS",))]
    assert 0 < len(importable) < len(dataset.questions)  # some lines import, the others are skipped

    data = (HANDBOOK / "questions.jsonl").read_bytes()
    response = admin_client.post("/health/golden/import", {"file": _file("questions.jsonl", data), "collection": corpus.pk}, follow=True)

    page = response.content.decode()
    assert f"Imported {len(importable)} new and updated 0" in page
    assert page.count("Skipped line") == min(20, len(dataset.questions) - len(importable))
    imported = {g.external_id: g for g in GoldenQuestion.objects.all()}
    assert sorted(imported) == sorted(q.id for q in importable)
    for question in importable:
        golden = imported[question.id]
        assert [s["source_path"] for s in golden.sources] == list(question.doc_ids)
        assert golden.evidence == list(question.evidence) and golden.question == question.question


def test_golden_pages_are_for_staff_only(client, employee):
    client.force_login(employee)
    assert client.get("/health/golden/").status_code == 302
    assert client.post("/health/golden/runs/").status_code == 302
    assert not GoldenRun.objects.exists()


def _file(name: str, data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="application/x-ndjson")
