"""`manage.py evaluate`: a dataset folder in, retrieval and answer metrics out."""

import json

import pytest
from django.core.management import CommandError, call_command

from chat import evaluation
from chat.prompting import NOT_FOUND
from kb.models import Document
from tests.fake_llm import FakeLLM

CORPUS = [
    {"id": "leave", "title": "Leave policy", "text": "You can carry over a maximum of 240 annual leave hours into the next year."},
    {"id": "travel", "title": "Travel", "text": "Book flights through the travel agency at least two weeks before departure."},
    {"id": "laptops", "title": "Laptops", "text": "Every laptop must use full-disk encryption and a screen lock after five minutes."},
    {"id": "parking", "title": "Parking", "text": "Staff parking permits are issued by facilities and renewed every January."},
]
QUESTIONS = [
    {"id": "q1", "question": "How many vacation hours roll over?", "doc_ids": ["leave"], "evidence": [],
     "answers": ["240 hours"]},
    {"id": "q2", "question": "How early must flights be booked?", "doc_ids": ["travel"], "evidence": ["two weeks"],
     "answers": ["two weeks"]},
    {"id": "q3", "question": "When does the cafeteria open on Sundays?", "doc_ids": [], "evidence": [],
     "answers": ["NOT_IN_CORPUS"]},
]


def write_dataset(root, corpus=CORPUS, questions=QUESTIONS):
    root.mkdir(exist_ok=True)
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in corpus) + "\n")
    (root / "questions.jsonl").write_text("\n".join(json.dumps(q) for q in questions) + "\n")
    return root


# --- metrics (pure) ---


def question(doc_ids, evidence=()):
    return evaluation.Question(id="q", question="?", doc_ids=tuple(doc_ids), evidence=tuple(evidence), answers=())


def test_a_relevant_document_first_scores_a_perfect_ndcg_and_rank():
    q = question(["a"])
    ranks = evaluation.relevant_ranks(q, [("a", "text"), ("b", "text")])

    score = evaluation.question_score(q, ranks, k=10)

    assert (score.recall, score.reciprocal_rank, score.ndcg) == (1.0, 1.0, 1.0)


def test_a_relevant_document_third_scores_by_its_rank():
    q = question(["c"])
    score = evaluation.question_score(q, evaluation.relevant_ranks(q, [("a", ""), ("b", ""), ("c", "")]), k=10)

    assert score.reciprocal_rank == pytest.approx(1 / 3)
    assert score.ndcg == pytest.approx(0.5)  # 1 / log2(3 + 1)


def test_several_passages_of_one_relevant_document_count_once():
    q = question(["a", "b"])
    ranks = evaluation.relevant_ranks(q, [("a", ""), ("a", ""), ("b", "")])

    assert ranks == [1, 2]
    assert evaluation.question_score(q, ranks, k=10).ndcg == pytest.approx(1.0)


def test_with_evidence_only_a_passage_that_contains_it_is_a_hit():
    q = question(["a"], evidence=["up to  240\nhours"])

    assert evaluation.relevant_ranks(q, [("a", "Sick leave has no cap."), ("a", "You keep UP TO 240 hours.")]) == [1]
    assert evaluation.relevant_ranks(q, [("a", "Sick leave has no cap.")]) == []


def test_a_folder_without_questions_is_refused_with_the_reason(tmp_path):
    with pytest.raises(CommandError, match="has no questions.jsonl"):
        call_command("evaluate", str(tmp_path))


def test_a_broken_questions_line_is_named(tmp_path):
    root = write_dataset(tmp_path / "ds")
    (root / "questions.jsonl").write_text('{"id": "1", "question": "x"}\nnot json\n')

    with pytest.raises(CommandError, match=r"questions.jsonl:2: not JSON"):
        call_command("evaluate", str(root))


# --- end to end (a real worker ingests the corpus; a real OpenAI-compatible server answers) ---


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_evaluate_ingests_the_corpus_and_reports_retrieval_for_each_mode(tmp_path, capsys):
    root = write_dataset(tmp_path / "tiny")

    call_command("evaluate", str(root), "--json")

    report = json.loads(capsys.readouterr().out)
    by_mode = {r["mode"]: r for r in report["retrieval"]}
    assert set(by_mode) == {"hybrid", "dense", "sparse"}
    assert by_mode["hybrid"]["questions"] == 2  # the unanswerable question has no ranking to score
    assert by_mode["hybrid"]["recall"] == 1.0 and by_mode["hybrid"]["mrr"] == 1.0
    assert by_mode["hybrid"]["latency_p50_ms"] > 0
    assert Document.objects.filter(status="indexed").count() == 4


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_second_run_reuses_the_ingested_corpus(tmp_path, capsys):
    root = write_dataset(tmp_path / "tiny")
    call_command("evaluate", str(root), "--json", "--modes", "hybrid")
    first = dict(Document.objects.values_list("source_path", "indexed_at"))

    call_command("evaluate", str(root), "--json", "--modes", "hybrid")

    assert dict(Document.objects.values_list("source_path", "indexed_at")) == first


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_generate_reports_correctness_citations_and_abstention(tmp_path, capsys, settings):
    root = write_dataset(tmp_path / "tiny")
    # Questions are answered in file order: q1 right with a citation, q2 wrong, q3 abstains.
    replies = ["You can carry over 240 hours [1].", "Flights need no booking [1]."]
    with FakeLLM(replies=replies, default_reply=NOT_FOUND) as fake:
        settings.LLM_BASE_URL = fake.base_url
        call_command("evaluate", str(root), "--json", "--modes", "hybrid", "--generate")

    generation = json.loads(capsys.readouterr().out)["generation"]
    assert generation["correct"] == 0.5
    assert generation["citation_precision"] == 1.0
    assert generation["abstention_on_unanswerable"] == 1.0
    assert generation["false_abstention"] == 0.0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_corpus_folder_uses_file_paths_as_document_ids(tmp_path, capsys):
    root = tmp_path / "files"
    (root / "corpus" / "policies").mkdir(parents=True)
    (root / "corpus" / "policies" / "leave.md").write_text("# Leave\n\nYou can carry over 240 annual leave hours.\n")
    (root / "corpus" / "travel.md").write_text("# Travel\n\nBook flights two weeks ahead through the agency.\n")
    (root / "questions.jsonl").write_text(json.dumps(
        {"id": "1", "question": "How many leave hours carry over?", "doc_ids": ["policies/leave.md"],
         "evidence": ["carry over 240"], "answers": []}) + "\n")

    call_command("evaluate", str(root), "--json", "--modes", "hybrid")

    assert json.loads(capsys.readouterr().out)["retrieval"][0]["recall"] == 1.0


def test_an_answer_in_other_words_is_graded_by_the_model_as_judge(settings):
    with FakeLLM(replies=["Yes", "No"]) as fake:
        settings.LLM_BASE_URL = fake.base_url
        agree = evaluation.answer_judged_equivalent(
            question="How many hours carry over?", answer="At most 240 of them [1].", references=("240 hours",)
        )
        disagree = evaluation.answer_judged_equivalent(
            question="How many hours carry over?", answer="None do [1].", references=("240 hours",)
        )

    assert (agree, disagree) == (True, False)
    assert "Reference answer: 240 hours" in fake.messages[0][-1]["content"]
