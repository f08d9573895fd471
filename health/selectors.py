"""Reads behind the content health page: what people could not find, how answers were rated, which documents
answer questions, which are overdue for review, and the daily activity the charts draw.

Everything is computed from the records answering already keeps (assistant Messages with the passages they were
shown and their checked citations, Feedback, UnansweredQuestion) and from kb's documents; nothing is stored here.
Passages and answers are shown only from collections the viewer may read (`kb.selectors.collections_readable`).
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import TruncDate
from django.utils import timezone

from chat.models import Feedback, Message, UnansweredQuestion
from kb.models import Document
from kb.selectors import collections_readable

# Questions more alike than this (cosine of their embeddings, average over two groups) are one topic.
# all-MiniLM-L6-v2 puts rephrasings of one question around 0.6-0.9 and unrelated office questions below 0.3.
GAP_SIMILARITY = 0.5
# The newest questions clustered at once; older ones drop off the page rather than slow it down.
GAP_MAX_QUESTIONS = 1000
GAP_EXAMPLES = 5
GAP_PASSAGES = 5
REVIEW_SOON_DAYS = 14


# --- Knowledge gaps ------------------------------------------------------------------------------------------------


@dataclass
class GapQuestion:
    """One question that found nothing, or whose answer got a thumbs-down (both, when it was both)."""

    question: str
    asked_at: datetime
    message_id: int | None = None
    unanswered_id: int | None = None
    reason: str = ""  # why it is a gap, as the admin reads it
    comment: str = ""
    passages: list[dict] = field(default_factory=list)

    @property
    def thumbs_down(self) -> bool:
        return bool(self.reason) and "Not helpful" in self.reason


@dataclass
class Gap:
    """Questions about one topic, newest first, with the passages retrieval offered for them."""

    questions: list[GapQuestion]
    passages: list[dict]  # each {"title", "heading", "link", "text", "times"}, the most often retrieved first

    @property
    def count(self) -> int:
        return len(self.questions)

    @property
    def examples(self) -> list[GapQuestion]:
        return self.questions[:GAP_EXAMPLES]

    @property
    def first_at(self) -> datetime:
        return min(q.asked_at for q in self.questions)

    @property
    def last_at(self) -> datetime:
        return max(q.asked_at for q in self.questions)

    @property
    def topic(self) -> str:
        return self.questions[0].question


def gaps_list(*, user, sort: str = "largest", similarity: float = GAP_SIMILARITY) -> list[Gap]:
    """Unanswered and thumbs-down questions grouped by topic.

    `sort="largest"`: most questions first, ties newest first; `sort="newest"`: latest question first.
    """
    readable = set(collections_readable(user=user))
    questions = _gap_questions(readable=readable)[:GAP_MAX_QUESTIONS]
    if not questions:
        return []
    vectors = _question_vectors([q.question for q in questions])
    gaps = [_gap([questions[i] for i in members]) for members in cluster_by_similarity(vectors, similarity=similarity)]
    if sort == "newest":
        gaps.sort(key=lambda g: (g.last_at, g.count), reverse=True)
    else:
        gaps.sort(key=lambda g: (g.count, g.last_at), reverse=True)
    return gaps


def _gap_questions(*, readable: set[int]) -> list[GapQuestion]:
    """Newest first; a question both unanswered and rated down is listed once."""
    by_message: dict[int, GapQuestion] = {}
    loose: list[GapQuestion] = []
    unanswered = UnansweredQuestion.objects.select_related("message").order_by("-created_at")[:GAP_MAX_QUESTIONS]
    for record in unanswered:
        item = GapQuestion(
            question=record.question, asked_at=record.created_at, message_id=record.message_id,
            unanswered_id=record.pk, reason=record.get_reason_display(),
            passages=readable_passages(record.message.passages if record.message else [], readable=readable),
        )
        if record.message_id:
            by_message[record.message_id] = item
        else:
            loose.append(item)
    disliked = (
        Feedback.objects.filter(helpful=False)
        .select_related("message")
        .annotate(question=question_of(outer="message"))
        .order_by("-created_at")[:GAP_MAX_QUESTIONS]
    )
    for feedback in disliked:
        item = by_message.get(feedback.message_id)
        if item is None:
            item = by_message[feedback.message_id] = GapQuestion(
                question=feedback.question or feedback.message.search_query, asked_at=feedback.message.created_at,
                message_id=feedback.message_id,
                passages=readable_passages(feedback.message.passages, readable=readable),
            )
        item.reason = " · ".join(filter(None, [item.reason, "Not helpful"]))
        item.comment = "\n".join(filter(None, [item.comment, feedback.comment]))
    questions = [q for q in [*by_message.values(), *loose] if q.question.strip()]
    return sorted(questions, key=lambda q: q.asked_at, reverse=True)


def _gap(questions: list[GapQuestion]) -> Gap:
    questions = sorted(questions, key=lambda q: q.asked_at, reverse=True)
    times: Counter = Counter()
    shown: dict[int, dict] = {}
    for question in questions:
        for passage in question.passages:
            times[passage["chunk_id"]] += 1
            shown.setdefault(passage["chunk_id"], passage)
    passages = [{**shown[chunk_id], "times": n} for chunk_id, n in times.most_common(GAP_PASSAGES)]
    return Gap(questions=questions, passages=passages)


def cluster_by_similarity(vectors: np.ndarray, *, similarity: float) -> list[list[int]]:
    """Average-linkage agglomerative clustering of unit vectors: the two groups whose members are most alike on
    average merge, until no two groups average `similarity` or more. Returns row indices per group, in input order."""
    n = len(vectors)
    if n == 0:
        return []
    scores = (vectors @ vectors.T).astype(np.float64)
    np.fill_diagonal(scores, -np.inf)
    sizes = np.ones(n)
    members: list[list[int] | None] = [[i] for i in range(n)]
    alive = np.ones(n, dtype=bool)
    while alive.sum() > 1:
        best = int(np.argmax(scores))
        a, b = divmod(best, n)
        if scores[a, b] < similarity:
            break
        # Merge b into a; a's similarity to every other group becomes the size-weighted average of both.
        merged = (sizes[a] * scores[a] + sizes[b] * scores[b]) / (sizes[a] + sizes[b])
        merged[~alive] = -np.inf
        merged[a] = -np.inf
        scores[a], scores[:, a] = merged, merged
        scores[b], scores[:, b] = -np.inf, -np.inf
        sizes[a] += sizes[b]
        alive[b] = False
        members[a] = members[a] + members[b]
        members[b] = None
    return [sorted(m) for m in members if m is not None]


_vector_cache: dict[str, np.ndarray] = {}
_vector_lock = threading.Lock()
_VECTOR_CACHE_SIZE = 4 * GAP_MAX_QUESTIONS


def _question_vectors(texts: list[str]) -> np.ndarray:
    """Embeddings of the questions, each computed once per process (the page is reloaded far more often than new
    questions arrive)."""
    from ingestion import embedding

    with _vector_lock:
        missing = list(dict.fromkeys(t for t in texts if t not in _vector_cache))
    if missing:
        computed = embedding.embed_texts(missing)
        with _vector_lock:
            if len(_vector_cache) + len(missing) > _VECTOR_CACHE_SIZE:
                _vector_cache.clear()
            _vector_cache.update(zip(missing, computed))
    with _vector_lock:
        known = {t: _vector_cache.get(t) for t in texts}
    if any(v is None for v in known.values()):  # evicted by a concurrent request meanwhile: compute them here
        absent = [t for t, v in known.items() if v is None]
        known.update(zip(absent, embedding.embed_texts(absent)))
    return np.stack([known[t] for t in texts]).astype(np.float32)


# --- Shared pieces ------------------------------------------------------------------------------------------------


def question_of(*, outer: str) -> Subquery:
    """The asker's text for an assistant message (`outer` names the field holding it): the user message before it
    in its conversation."""
    return Subquery(
        Message.objects.filter(
            conversation_id=OuterRef(f"{outer}__conversation_id"), role=Message.Role.USER, id__lt=OuterRef(outer)
        ).order_by("-id").values("text")[:1]
    )


def readable_passages(passages: list[dict], *, readable: set[int]) -> list[dict]:
    """The stored passages from collections the viewer may read, each with its heading and a link to its page."""
    from chat.views import passage_link

    return [
        {**p, "heading": " › ".join(p.get("heading_path") or []), "link": passage_link(p)}
        for p in passages or []
        if p.get("collection_id") in readable and p.get("chunk_id")
    ]


# --- Feedback -----------------------------------------------------------------------------------------------------


@dataclass
class RatedAnswer:
    feedback: Feedback
    question: str
    answer: str  # empty when withheld
    withheld: bool  # the answer drew on a collection the viewer may not read
    passages: list[dict]
    cited: list[dict]  # the passages its citations point to, each once, in citation order


def feedback_list(
    *,
    user,
    collection_id: int | None = None,
    document_id: int | None = None,
    helpful: bool | None = None,
    since: date | None = None,
    until: date | None = None,
) -> list[RatedAnswer]:
    """Every rated answer, newest rating first. Collection and document filters match the passages the answer cites
    (all it was given, when it cites none); dates are the day of the rating, both ends included."""
    readable = set(collections_readable(user=user))
    ratings = Feedback.objects.select_related("message", "user").annotate(question=question_of(outer="message"))
    if helpful is not None:
        ratings = ratings.filter(helpful=helpful)
    if since:
        ratings = ratings.filter(created_at__gte=_day_start(since))
    if until:
        ratings = ratings.filter(created_at__lt=_day_start(until + timedelta(days=1)))
    rows = []
    for feedback in ratings.order_by("-created_at", "-id"):
        stored = feedback.message.passages or []
        sources = _sources(stored, feedback.message.citations or [])
        if collection_id and not any(p.get("collection_id") == collection_id for p in sources):
            continue
        if document_id and not any(p.get("document_id") == document_id for p in sources):
            continue
        rows.append(_rated_answer(feedback, stored=stored, readable=readable))
    return rows


def _sources(passages: list[dict], citations: list[dict]) -> list[dict]:
    """The passages an answer rests on: those it cites, or all it was given when it cites none."""
    cited = {c.get("n") for c in citations}
    return [p for p in passages if p.get("n") in cited] or passages


def _rated_answer(feedback: Feedback, *, stored: list[dict], readable: set[int]) -> RatedAnswer:
    withheld = any(p.get("collection_id") not in readable for p in stored)
    passages = readable_passages(stored, readable=readable)
    by_n = {p.get("n"): p for p in passages}
    cited_ns = list(dict.fromkeys(c.get("n") for c in feedback.message.citations or []))
    return RatedAnswer(
        feedback=feedback,
        question=feedback.question or feedback.message.search_query,
        answer="" if withheld else feedback.message.text,
        withheld=withheld,
        passages=passages,
        cited=[by_n[n] for n in cited_ns if n in by_n],
    )


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, datetime.min.time()))


# --- Documents ----------------------------------------------------------------------------------------------------


@dataclass
class DocumentUsage:
    document: Document
    cited: int = 0  # answers that cite one of its passages
    shown: int = 0  # answers that were given one of its passages
    rated: int = 0  # rated answers that cite it
    helpful: int = 0
    last_cited: datetime | None = None

    @property
    def helpful_rate(self) -> float | None:
        return self.helpful / self.rated if self.rated else None


def documents_usage(*, user) -> list[DocumentUsage]:
    """Every readable document with how answers used it, the most cited first."""
    documents = Document.objects.filter(collection_id__in=collections_readable(user=user)).select_related("collection", "owner")
    usage = {d.pk: DocumentUsage(document=d) for d in documents.defer("extracted_text")}
    ratings: dict[int, list[bool]] = defaultdict(list)
    for message_id, helpful in Feedback.objects.values_list("message_id", "helpful"):
        ratings[message_id].append(helpful)
    answers = Message.objects.filter(role=Message.Role.ASSISTANT).values_list("id", "created_at", "passages", "citations")
    for message_id, created_at, passages, citations in answers.iterator(chunk_size=500):
        by_n = {p.get("n"): p.get("document_id") for p in passages or []}
        cited = {by_n.get(c.get("n")) for c in citations or []} - {None}
        for document_id in set(by_n.values()) & usage.keys():
            usage[document_id].shown += 1
        for document_id in cited & usage.keys():
            row = usage[document_id]
            row.cited += 1
            row.last_cited = max(filter(None, [row.last_cited, created_at]))
            row.rated += len(ratings.get(message_id, []))
            row.helpful += sum(ratings.get(message_id, []))
    return sorted(usage.values(), key=lambda u: (-u.cited, -u.shown, u.document.title.lower()))


# --- Staleness and ownership ---------------------------------------------------------------------------------------


def documents_overdue(*, user, today: date | None = None) -> QuerySet[Document]:
    """Readable documents whose review-by date has passed, the longest overdue first."""
    today = today or timezone.localdate()
    return (
        Document.objects.filter(collection_id__in=collections_readable(user=user), review_by__lt=today)
        .select_related("collection", "owner").defer("extracted_text").order_by("review_by", "title")
    )


def documents_due_soon(*, user, today: date | None = None, days: int = REVIEW_SOON_DAYS) -> QuerySet[Document]:
    today = today or timezone.localdate()
    return (
        Document.objects.filter(
            collection_id__in=collections_readable(user=user), review_by__gte=today, review_by__lte=today + timedelta(days=days)
        ).select_related("collection", "owner").defer("extracted_text").order_by("review_by", "title")
    )


def documents_owned(*, owner) -> QuerySet[Document]:
    """What `owner` answers for (in collections they may read), those due first; no review date last."""
    return (
        Document.objects.filter(owner=owner, collection_id__in=collections_readable(user=owner))
        .select_related("collection").defer("extracted_text")
        .order_by(F("review_by").asc(nulls_last=True), "title")
    )


@dataclass
class OwnerReminder:
    owner: object
    overdue: list[Document]


def review_reminders(*, today: date | None = None) -> list[OwnerReminder]:
    """Per active owner, the documents they own that are overdue for review (in collections they may read)."""
    today = today or timezone.localdate()
    overdue = (
        Document.objects.filter(review_by__lt=today, owner__isnull=False, owner__is_active=True)
        .select_related("owner", "collection").defer("extracted_text").order_by("owner_id", "review_by", "title")
    )
    by_owner: dict[int, OwnerReminder] = {}
    readable: dict[int, set[int]] = {}
    for document in overdue:
        owner = document.owner
        if owner.pk not in readable:
            readable[owner.pk] = set(collections_readable(user=owner))
        if document.collection_id in readable[owner.pk]:
            by_owner.setdefault(owner.pk, OwnerReminder(owner=owner, overdue=[])).overdue.append(document)
    return list(by_owner.values())


# --- Charts -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DayActivity:
    day: date
    questions: int
    answered: int
    unanswered: int
    rated: int
    helpful: int

    @property
    def helpful_percent(self) -> int | None:
        return round(100 * self.helpful / self.rated) if self.rated else None


def activity_by_day(*, days: int = 30, today: date | None = None) -> list[DayActivity]:
    """One row per day of the last `days` days (today included), oldest first, zeros where nothing happened.

    questions: answers given (one per question asked); answered: those the model answered from the passages;
    unanswered: questions recorded as unanswered; rated/helpful: ratings given that day.
    """
    today = today or timezone.localdate()
    first = today - timedelta(days=days - 1)
    start = _day_start(first)
    answers = (
        Message.objects.filter(role=Message.Role.ASSISTANT, created_at__gte=start)
        .annotate(day=TruncDate("created_at")).values("day")
        .annotate(total=Count("id"), answered=Count("id", filter=Q(answered=True, status=Message.Status.COMPLETE)))
    )
    missed = (
        UnansweredQuestion.objects.filter(created_at__gte=start).annotate(day=TruncDate("created_at"))
        .values("day").annotate(n=Count("id"))
    )
    ratings = (
        Feedback.objects.filter(created_at__gte=start).annotate(day=TruncDate("created_at")).values("day")
        .annotate(n=Count("id"), helpful=Count("id", filter=Q(helpful=True)))
    )
    by_answers = {_as_date(r["day"]): r for r in answers}
    by_missed = {_as_date(r["day"]): r["n"] for r in missed}
    by_ratings = {_as_date(r["day"]): r for r in ratings}
    rows = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        a, r = by_answers.get(day, {}), by_ratings.get(day, {})
        rows.append(DayActivity(
            day=day, questions=a.get("total", 0), answered=a.get("answered", 0), unanswered=by_missed.get(day, 0),
            rated=r.get("n", 0), helpful=r.get("helpful", 0),
        ))
    return rows


def _as_date(value) -> date:
    # SQLite hands TruncDate back as a string on some versions; PostgreSQL as a date.
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])

