"""Golden questions: from a gap or a thumbs-down to a regression suite.

An admin records, for a question the portal got wrong, the right source (a document, optionally a passage) and a
reference answer. A run asks every golden question again against the current index and model and records, per
question, whether an expected document came back in the top k (recall, as chat.evaluation computes it) and whether
the answer is correct (chat.evaluation.answer_outcome: the reference contained in the answer, or judged equivalent by
the model). Runs are kept, so each one is compared with the one before.

Export and import use the dataset format of ../shared/eval/README.md (questions.jsonl): `doc_ids` are the
documents' source paths; on import each id is matched to a document by source path, then by title.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from chat import evaluation
from chat.models import Message, UnansweredQuestion
from kb.models import Chunk, Collection, Document
from kb.selectors import collections_readable, documents_readable, passages_search

from .models import GoldenQuestion, GoldenResult, GoldenRun

logger = logging.getLogger(__name__)

PICKER_LIMIT = 20
NOT_IN_CORPUS = evaluation.NOT_IN_CORPUS


class GoldenError(ValueError):
    """Input an admin can correct; the message says how."""


# --- Where a golden question comes from -------------------------------------------------------------------------


@dataclass
class GoldenDraft:
    """What the new golden question form starts from: the question asked, and what the portal answered."""

    question: str = ""
    answer: str = ""
    passages: list[dict] = field(default_factory=list)
    comment: str = ""
    unanswered_id: int | None = None
    message_id: int | None = None


def golden_draft(*, user, unanswered_id: int | None = None, message_id: int | None = None) -> GoldenDraft:
    """The question, answer and passages of a gap or a rated answer; passages `user` may not read are left out."""
    if unanswered_id is not None:
        gap = UnansweredQuestion.objects.select_related("message").filter(pk=unanswered_id).first()
        if gap is None:
            raise GoldenError("That unanswered question no longer exists.")
        draft = GoldenDraft(question=gap.search_query or gap.question, unanswered_id=gap.pk)
        if gap.question and gap.search_query and _words(gap.question) == _words(gap.search_query):
            draft.question = gap.question
        message = gap.message
    elif message_id is not None:
        message = Message.objects.filter(pk=message_id, role=Message.Role.ASSISTANT).first()
        if message is None:
            raise GoldenError("That answer no longer exists.")
        draft = GoldenDraft(question=_asked(message), message_id=message.pk)
    else:
        return GoldenDraft()
    if message is not None:
        readable = set(collections_readable(user=user))
        draft.answer = message.text
        draft.passages = [p for p in message.passages if p.get("collection_id") in readable]
        bad = message.feedback.filter(helpful=False).exclude(comment="").first()
        draft.comment = bad.comment if bad else ""
    return draft


def _asked(message: Message) -> str:
    """The question an answer replied to, standalone: a rewritten follow-up is what was searched."""
    asked = message.conversation.messages.filter(role=Message.Role.USER, id__lt=message.pk).order_by("-id").first()
    text = asked.text if asked else ""
    if message.search_query and _words(message.search_query) != _words(text):
        return message.search_query
    return text or message.search_query


def _words(text: str) -> list[str]:
    return evaluation.collapse(text).rstrip("?.!").split()


# --- The picker ---------------------------------------------------------------------------------------------------


def documents_pick(*, user, query: str, limit: int = PICKER_LIMIT) -> QuerySet[Document]:
    """Indexed documents `user` may read whose title or path contains every word of `query`."""
    documents = documents_readable(user=user).filter(status=Document.Status.INDEXED).select_related("collection")
    for word in query.split()[:8]:
        documents = documents.filter(Q(title__icontains=word) | Q(source_path__icontains=word))
    return documents.defer("extracted_text").order_by("title", "pk")[:limit]


def document_passages(*, user, document_id: int) -> tuple[Document, QuerySet[Chunk]]:
    document = documents_readable(user=user).filter(pk=document_id).select_related("collection").first()
    if document is None:
        raise GoldenError("Pick a document from the list.")
    return document, document.chunks.order_by("ordinal")


# --- Recording ----------------------------------------------------------------------------------------------------


def _source(document: Document) -> dict:
    return {
        "document_id": document.pk,
        "source_path": document.source_path,
        "title": document.title,
        "collection": document.collection.name,
    }


def golden_create(
    *,
    user,
    question: str,
    reference_answer: str,
    document_id: int | None,
    chunk_id: int | None = None,
    evidence: str = "",
    unanswered_id: int | None = None,
    message_id: int | None = None,
) -> GoldenQuestion:
    """Record a golden question: the right document (and passage, whose text becomes the evidence unless an
    evidence string is given) and the reference answer. It is searched in the document's collection."""
    question, reference_answer, evidence = question.strip(), reference_answer.strip(), evidence.strip()
    if not question:
        raise GoldenError("Write the question.")
    if document_id is None:
        raise GoldenError("Pick the document that answers the question.")
    document = documents_readable(user=user).select_related("collection").filter(pk=document_id).first()
    if document is None:
        raise GoldenError("Pick a document from the list: that one does not exist or you may not read it.")
    if chunk_id is not None:
        chunk = Chunk.objects.filter(pk=chunk_id, document=document).first()
        if chunk is None:
            raise GoldenError("That passage is not part of the chosen document (it may have been re-uploaded); pick it again.")
        evidence = evidence or chunk.text
    if evidence and evaluation.collapse(evidence) not in evaluation.collapse(document.extracted_text):
        raise GoldenError("The evidence must be words copied from the document; this text is not in it.")
    with transaction.atomic():
        golden = GoldenQuestion.objects.create(
            question=question,
            reference_answer=reference_answer,
            sources=[_source(document)],
            evidence=[evidence] if evidence else [],
            from_unanswered=UnansweredQuestion.objects.filter(pk=unanswered_id).first() if unanswered_id else None,
            from_message=Message.objects.filter(pk=message_id).first() if message_id else None,
            created_by=user,
        )
        golden.collections.set([document.collection_id])
    return golden


def golden_delete(*, golden_id: int) -> None:
    GoldenQuestion.objects.filter(pk=golden_id).delete()


def golden_list() -> QuerySet[GoldenQuestion]:
    return GoldenQuestion.objects.prefetch_related("collections")


# --- Runs ---------------------------------------------------------------------------------------------------------


def model_description() -> str:
    return settings.LLM_MODEL if settings.LLM_BASE_URL else f"{settings.LLM_MODEL} (local)"


def golden_run_create(*, user=None, k: int | None = None) -> GoldenRun:
    return GoldenRun.objects.create(
        k=k or settings.SEARCH_TOP_K, total=GoldenQuestion.objects.count(), started_by=user, model_name=model_description()
    )


def golden_run_start(*, user, k: int | None = None) -> GoldenRun:
    """Queue a run for the worker (after commit); while one is queued or running, that one is returned instead."""
    unfinished = GoldenRun.objects.filter(status__in=[GoldenRun.Status.QUEUED, GoldenRun.Status.RUNNING]).first()
    if unfinished is not None:
        return unfinished
    if not GoldenQuestion.objects.exists():
        raise GoldenError("There are no golden questions to run yet.")
    run = golden_run_create(user=user, k=k)
    from .checks import run_golden_questions

    transaction.on_commit(lambda: run_golden_questions.delay(run.pk))
    return run


def golden_run_execute(*, run_id: int, on_progress: Callable[[GoldenRun], None] | None = None) -> GoldenRun:
    """Ask every golden question, recording each result as it comes; a redelivered run resumes where it stopped."""
    run = GoldenRun.objects.get(pk=run_id)
    if run.status in (GoldenRun.Status.DONE, GoldenRun.Status.FAILED):
        return run
    questions = list(golden_list())
    done = set(run.results.values_list("golden_id", flat=True))
    GoldenRun.objects.filter(pk=run.pk).update(status=GoldenRun.Status.RUNNING, total=len(questions), completed=len(done))
    run.refresh_from_db()
    try:
        for golden in questions:
            if golden.pk in done:
                continue
            golden_result_compute(run=run, golden=golden)
            run.completed += 1
            GoldenRun.objects.filter(pk=run.pk).update(completed=run.completed)
            if on_progress is not None:
                on_progress(run)
    except Exception as error:
        logger.exception("Golden run %s failed", run.pk)
        GoldenRun.objects.filter(pk=run.pk).update(
            status=GoldenRun.Status.FAILED, error=f"{type(error).__name__}: {error}", finished_at=timezone.now()
        )
        raise
    return _run_finish(run)


def _question(golden: GoldenQuestion) -> evaluation.Question:
    return evaluation.Question(
        id=str(golden.pk),
        question=golden.question,
        doc_ids=tuple(str(i) for i in golden.document_ids),
        evidence=tuple(golden.evidence),
        answers=(golden.reference_answer,) if golden.reference_answer else (),
    )


def golden_result_compute(*, run: GoldenRun, golden: GoldenQuestion) -> GoldenResult:
    """Search and answer one golden question as an employee would, and score both."""
    from chat.services import answer_collect

    question = _question(golden)
    scope = [c.pk for c in golden.collections.all()] or None
    passages = passages_search(user=None, query=golden.question, k=run.k, collection_ids=scope)
    recall, rank = None, None
    if question.doc_ids:
        ranks = evaluation.relevant_ranks(question, [(str(p.document_id), p.text) for p in passages])
        recall = evaluation.question_score(question, ranks, k=run.k).recall
        rank = ranks[0] if ranks else None
    answer = answer_collect(text=golden.question, collection_ids=scope)
    doc_id_of = {p["document_id"]: str(p["document_id"]) for p in answer.passages}
    outcome = evaluation.answer_outcome(question, answer, doc_id_of=doc_id_of)
    correct = outcome.correct
    if golden.reference_answer == NOT_IN_CORPUS:
        correct = outcome.abstained  # the right answer is "the documents do not say"
    return GoldenResult.objects.create(
        run=run,
        golden=golden,
        question=golden.question,
        recall=recall,
        rank=rank,
        correct=correct,
        abstained=outcome.abstained,
        answer=answer.text,
        retrieved=[{"document_id": p.document_id, "title": p.title} for p in passages],
        error=answer.error,
    )


def _run_finish(run: GoldenRun) -> GoldenRun:
    results = list(run.results.all())
    recalls = [r.recall for r in results if r.recall is not None]
    graded = [r.correct for r in results if r.correct is not None]
    GoldenRun.objects.filter(pk=run.pk).update(
        status=GoldenRun.Status.DONE,
        recall=sum(recalls) / len(recalls) if recalls else None,
        correct=sum(graded) / len(graded) if graded else None,
        finished_at=timezone.now(),
    )
    run.refresh_from_db()
    return run


@dataclass
class QuestionChange:
    question: str
    was: str
    now: str


@dataclass
class RunComparison:
    run: GoldenRun
    previous: GoldenRun | None
    recall_change: float | None
    correct_change: float | None
    changes: list[QuestionChange]


def golden_run_compare(*, run: GoldenRun) -> RunComparison:
    """The run against the last finished run before it: the totals' change and the questions whose verdict moved."""
    previous = GoldenRun.objects.filter(status=GoldenRun.Status.DONE, pk__lt=run.pk).order_by("-pk").first()
    if previous is None:
        return RunComparison(run, None, None, None, [])
    before = {r.golden_id: r for r in previous.results.all() if r.golden_id}
    changes = []
    for result in run.results.all():
        old = before.get(result.golden_id)
        if old is not None and verdict(old) != verdict(result):
            changes.append(QuestionChange(result.question, verdict(old), verdict(result)))
    return RunComparison(
        run=run,
        previous=previous,
        recall_change=_change(run.recall, previous.recall),
        correct_change=_change(run.correct, previous.correct),
        changes=changes,
    )


def verdict(result: GoldenResult) -> str:
    found = {None: "", True: "source found", False: "source missed"}[result.found]
    correct = {None: "", True: "answer correct", False: "answer wrong"}[result.correct]
    return ", ".join(v for v in (found, correct) if v) or "not graded"


def _change(now: float | None, before: float | None) -> float | None:
    return None if now is None or before is None else now - before


def golden_runs_list() -> QuerySet[GoldenRun]:
    return GoldenRun.objects.all()


# --- Export and import (../shared/eval/README.md) -------------------------------------------------------------


def golden_export_lines() -> Iterator[str]:
    """questions.jsonl lines: doc ids are source paths; `collections` (an extra key) narrows the match on import."""
    for golden in golden_list():
        record = {
            "id": golden.external_id or f"golden-{golden.pk}",
            "question": golden.question,
            "doc_ids": [s["source_path"] for s in golden.sources],
            "evidence": list(golden.evidence),
            "answers": [golden.reference_answer] if golden.reference_answer else [],
            "collections": sorted({s["collection"] for s in golden.sources} | {c.name for c in golden.collections.all()}),
        }
        yield json.dumps(record, ensure_ascii=False) + "\n"


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    skipped: list[str] = field(default_factory=list)  # one reason per skipped line


def golden_import(*, user, lines: Iterable[str | bytes], collection: Collection | None = None) -> ImportReport:
    """Add (or update, matched by id, then by question) golden questions from questions.jsonl lines.

    Each doc id is matched to a document `user` may read, by source path, then by title, within `collection` or the
    record's `collections` when given. A line whose documents are not all found is skipped with the reason; the
    rest are imported.
    """
    report = ImportReport()
    documents = documents_readable(user=user).select_related("collection")
    if collection is not None:
        documents = documents.filter(collection=collection)
    for number, line in enumerate(lines, start=1):
        line = line.decode("utf-8-sig") if isinstance(line, bytes) else line
        if not line.strip():
            continue
        try:
            _import_record(user, json.loads(line), documents, collection, report)
        except json.JSONDecodeError as error:
            report.skipped.append(f"line {number}: not JSON ({error.msg})")
        except GoldenError as error:
            report.skipped.append(f"line {number}: {error}")
    return report


def _import_record(user, record, documents, collection, report: ImportReport) -> None:
    if not isinstance(record, dict) or not str(record.get("question") or "").strip():
        raise GoldenError("each line needs a question")
    question = str(record["question"]).strip()
    scoped = documents
    names = [n for n in record.get("collections") or () if isinstance(n, str)]
    if collection is None and names and documents.filter(collection__name__in=names).exists():
        scoped = documents.filter(collection__name__in=names)
    matched = [_document_for(str(doc_id), scoped) for doc_id in record.get("doc_ids") or ()]
    answers = [str(a) for a in record.get("answers") or ()]
    if not matched and answers != [NOT_IN_CORPUS]:
        raise GoldenError(f"“{question[:60]}” names no document")
    fields = {
        "question": question,
        "reference_answer": answers[0] if answers else "",
        "sources": [_source(d) for d in matched],
        "evidence": [str(e) for e in record.get("evidence") or ()],
        "external_id": str(record.get("id") or "")[:200],
    }
    existing = _existing(fields["external_id"], question)
    with transaction.atomic():
        if existing is None:
            golden = GoldenQuestion.objects.create(created_by=user, **fields)
            report.created += 1
        else:
            GoldenQuestion.objects.filter(pk=existing.pk).update(updated_at=timezone.now(), **fields)
            golden = existing
            report.updated += 1
        scope = {d.collection_id for d in matched} or ({collection.pk} if collection else set())
        golden.collections.set(scope)


def _document_for(doc_id: str, documents: QuerySet[Document]) -> Document:
    for lookup in ({"source_path": doc_id}, {"title": doc_id}):
        found = list(documents.filter(**lookup)[:3])
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            where = ", ".join(sorted({d.collection.name for d in found}))
            raise GoldenError(f"document “{doc_id}” is in several collections ({where}); choose the collection to import into")
    raise GoldenError(f"no document “{doc_id}” (matched by source path or title); upload it first")


def _existing(external_id: str, question: str) -> GoldenQuestion | None:
    if external_id:
        found = GoldenQuestion.objects.filter(external_id=external_id).first()
        if found is None and external_id.startswith("golden-") and external_id[7:].isdigit():
            found = GoldenQuestion.objects.filter(pk=int(external_id[7:]), question=question).first()
        if found is not None:
            return found
    return GoldenQuestion.objects.filter(question=question).first()
