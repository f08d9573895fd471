"""Measuring retrieval and answers on a dataset in the format of ../shared/eval/README.md.

A dataset folder holds `corpus/` (files; their paths relative to it are the document ids) or `corpus.jsonl`
(`{"id", "title", "text"}` per line), and `questions.jsonl` (`{"id", "question", "doc_ids", "evidence", "answers"}`).

A retrieved passage is a hit when its document is listed in `doc_ids` and, if `evidence` is given, it contains one of
the evidence strings (whitespace collapsed). Ranking metrics are computed over documents in the order their first hit
appears, so a relevant document counts once however many of its passages come back: on a corpus of one passage per
document this is BEIR's document-level nDCG.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ingestion.services import IncomingFile
from kb.models import Collection, Document
from kb.selectors import Passage

NOT_IN_CORPUS = "NOT_IN_CORPUS"


class DatasetError(ValueError):
    """The folder is not a dataset in the expected format; the message says what is wrong."""


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    doc_ids: tuple[str, ...]
    evidence: tuple[str, ...]
    answers: tuple[str, ...]

    @property
    def answerable(self) -> bool:
        return bool(self.doc_ids) and list(self.answers) != [NOT_IN_CORPUS]


@dataclass(frozen=True)
class Dataset:
    root: Path
    questions: list[Question]

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def collection_name(self) -> str:
        # Two datasets may share a folder name; the path keeps their collections apart.
        digest = hashlib.sha1(str(self.root.resolve()).encode()).hexdigest()[:8]
        return f"eval-{self.name}-{digest}"

    def corpus_files(self) -> Iterator[IncomingFile]:
        jsonl = self.root / "corpus.jsonl"
        if jsonl.exists():
            for number, record in _jsonl(jsonl):
                if not str(record.get("id", "")).strip() or not str(record.get("text", "")).strip():
                    raise DatasetError(f"{jsonl}:{number}: each line needs a non-empty id and text")
                yield IncomingFile(name=str(record["id"]), data=record["text"].encode("utf-8"), title=record.get("title") or "")
            return
        from ingestion.management.commands.ingest import files_under, read

        for name, path in files_under([self.root / "corpus"]):
            yield read(name, path)


def dataset_load(root: Path) -> Dataset:
    root = Path(root)
    if not (root / "questions.jsonl").is_file():
        raise DatasetError(f"{root} has no questions.jsonl")
    if not (root / "corpus.jsonl").is_file() and not (root / "corpus").is_dir():
        raise DatasetError(f"{root} has neither corpus.jsonl nor a corpus/ folder")
    questions = []
    for number, record in _jsonl(root / "questions.jsonl"):
        try:
            questions.append(
                Question(
                    id=str(record["id"]),
                    question=str(record["question"]),
                    doc_ids=tuple(str(d) for d in record.get("doc_ids") or ()),
                    evidence=tuple(str(e) for e in record.get("evidence") or ()),
                    answers=tuple(str(a) for a in record.get("answers") or ()),
                )
            )
        except KeyError as missing:
            raise DatasetError(f"{root / 'questions.jsonl'}:{number}: missing field {missing}") from None
    return Dataset(root=root, questions=questions)


def _jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError as error:
                    raise DatasetError(f"{path}:{number}: not JSON ({error.msg})") from None


# --- Retrieval metrics --------------------------------------------------------------------------------


def collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def is_hit(question: Question, passage_doc_id: str, passage_text: str) -> bool:
    if passage_doc_id not in question.doc_ids:
        return False
    if not question.evidence:
        return True
    text = collapse(passage_text)
    return any(collapse(e) in text for e in question.evidence)


def relevant_ranks(question: Question, ranked: list[tuple[str, str]]) -> list[int]:
    """1-based ranks, in the list of distinct documents retrieved, of the relevant documents found."""
    documents: list[str] = []
    found: list[int] = []
    for doc_id, text in ranked:
        if doc_id not in documents:
            documents.append(doc_id)
        if is_hit(question, doc_id, text):
            rank = documents.index(doc_id) + 1
            if rank not in found:
                found.append(rank)
    return sorted(found)


@dataclass(frozen=True)
class QuestionScore:
    recall: float
    reciprocal_rank: float
    ndcg: float


def question_score(question: Question, ranks: list[int], *, k: int) -> QuestionScore:
    relevant = len(set(question.doc_ids))
    within = [r for r in ranks if r <= k]
    dcg = sum(1 / math.log2(r + 1) for r in ranks if r <= 10)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(relevant, 10)))
    first = min(ranks) if ranks else None
    return QuestionScore(
        recall=len(within) / relevant,
        reciprocal_rank=1 / first if first and first <= 10 else 0.0,
        ndcg=dcg / ideal if ideal else 0.0,
    )


@dataclass
class RetrievalReport:
    mode: str
    k: int
    questions: int
    recall: float
    mrr: float
    ndcg: float
    latency_p50_ms: float
    latency_p95_ms: float

    def as_dict(self) -> dict:
        return {key: round(value, 4) if isinstance(value, float) else value for key, value in self.__dict__.items()}


def retrieval_evaluate(
    *, dataset: Dataset, search: Callable[[str, int], list[Passage]], doc_id_of: dict[int, str], mode: str, k: int
) -> RetrievalReport:
    scores, latencies = [], []
    for question in (q for q in dataset.questions if q.answerable):
        started = time.perf_counter()
        passages = search(question.question, max(k, 10))
        latencies.append((time.perf_counter() - started) * 1000)
        ranked = [(doc_id_of.get(p.document_id, ""), p.text) for p in passages]
        scores.append(question_score(question, relevant_ranks(question, ranked), k=k))
    count = len(scores) or 1
    return RetrievalReport(
        mode=mode,
        k=k,
        questions=len(scores),
        recall=sum(s.recall for s in scores) / count,
        mrr=sum(s.reciprocal_rank for s in scores) / count,
        ndcg=sum(s.ndcg for s in scores) / count,
        latency_p50_ms=percentile(latencies, 50),
        latency_p95_ms=percentile(latencies, 95),
    )


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(p) - 1]


def document_ids_of(collection: Collection) -> dict[int, str]:
    """Lantern document pk -> the dataset's document id (the name it was ingested under)."""
    return dict(Document.objects.filter(collection=collection).values_list("pk", "source_path"))


# --- Answer metrics (--generate) ----------------------------------------------------------------------


@dataclass
class AnswerOutcome:
    question_id: str
    answerable: bool
    abstained: bool
    correct: bool | None  # None: no reference answer to compare with
    judged: bool = False  # correctness came from the model's judgement, not from containment
    cited_documents: list[str] = field(default_factory=list)
    cited_relevant: int = 0
    first_token_ms: float | None = None
    answer: str = ""


def answer_contains_reference(answer: str, references: tuple[str, ...]) -> bool:
    text = collapse(answer)
    return any(collapse(r) and collapse(r) in text for r in references)


JUDGE_PROMPT = (
    "You grade answers. Reply with one word: yes if the answer states the same key facts as the reference answer "
    "(wording may differ, extra detail is fine), otherwise no."
)


def answer_judged_equivalent(*, question: str, answer: str, references: tuple[str, ...]) -> bool:
    """Ask the model whether the answer agrees with a reference answer (used when the reference is not contained)."""
    from chat import llm

    for reference in references:
        content = f"Question: {question}\nReference answer: {reference}\nAnswer to grade: {answer}\nSame key facts?"
        verdict = llm.complete(
            [{"role": "system", "content": JUDGE_PROMPT}, {"role": "user", "content": content}], max_tokens=3, temperature=0.0
        )
        if verdict.strip().lower().startswith("yes"):
            return True
    return False


@dataclass
class GenerationReport:
    questions: int
    answerable: int
    correct: float | None
    correct_by_judge: int
    citation_precision: float | None
    abstention_on_unanswerable: float | None
    false_abstention: float | None
    first_token_p50_ms: float | None

    def as_dict(self) -> dict:
        return {key: round(value, 4) if isinstance(value, float) else value for key, value in self.__dict__.items()}


def generation_report(outcomes: list[AnswerOutcome]) -> GenerationReport:
    answerable = [o for o in outcomes if o.answerable]
    unanswerable = [o for o in outcomes if not o.answerable]
    graded = [o for o in answerable if o.correct is not None]
    cited = sum(len(o.cited_documents) for o in answerable)
    first_tokens = [o.first_token_ms for o in outcomes if o.first_token_ms is not None]
    return GenerationReport(
        questions=len(outcomes),
        answerable=len(answerable),
        correct=_share(sum(bool(o.correct) for o in graded), len(graded)),
        correct_by_judge=sum(o.judged for o in graded),
        citation_precision=_share(sum(o.cited_relevant for o in answerable), cited),
        abstention_on_unanswerable=_share(sum(o.abstained for o in unanswerable), len(unanswerable)),
        false_abstention=_share(sum(o.abstained for o in answerable), len(answerable)),
        first_token_p50_ms=percentile(first_tokens, 50) if first_tokens else None,
    )


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def answer_outcome(question: Question, result, *, doc_id_of: dict[int, str], judge: bool = True) -> AnswerOutcome:
    """Score one generated answer (a chat.services.AnswerResult) against the question's references: correct when a
    reference is contained in the answer or, failing that and with `judge`, when the model judges them equivalent."""
    by_number = {p["n"]: p for p in result.passages}
    cited_numbers = sorted({c["n"] for c in result.citations if c["n"] in by_number})
    cited_documents = [doc_id_of.get(by_number[n]["document_id"], "") for n in cited_numbers]
    references = tuple(a for a in question.answers if a != NOT_IN_CORPUS)
    abstained = not result.answered
    correct, judged = None, False
    if question.answerable and references:
        correct = not abstained and answer_contains_reference(result.text, references)
        if not correct and not abstained and judge and not result.error:
            correct = judged = answer_judged_equivalent(question=question.question, answer=result.text, references=references)
    return AnswerOutcome(
        question_id=question.id,
        answerable=question.answerable,
        abstained=abstained,
        correct=correct,
        judged=judged,
        cited_documents=cited_documents,
        cited_relevant=sum(d in question.doc_ids for d in cited_documents),
        first_token_ms=result.first_token_ms,
        answer=result.text,
    )
