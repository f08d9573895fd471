"""Reads of the knowledge base, shaped for the pages, the API and the CLI."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from ingestion import embedding

from . import vectorstore
from .models import Chunk, Collection, Document, UploadBatch


@dataclass(frozen=True)
class BatchProgress:
    total: int
    indexed: int
    failed: int
    pending: int
    fraction: float  # 0..1, failed documents count as done
    eta_seconds: float | None  # None until there is enough to estimate from

    @property
    def done(self) -> bool:
        return self.pending == 0


def documents_list(
    *, user=None, collection_id: int | None = None, status: str = "", batch_id: int | None = None
) -> QuerySet[Document]:
    """Documents for the admin pages: of the collections `user` may read (staff manage what they may read)."""
    documents = Document.objects.select_related("collection").defer("extracted_text")
    if user is not None:
        documents = documents.filter(collection_id__in=collections_readable(user=user))
    if collection_id:
        documents = documents.filter(collection_id=collection_id)
    if status:
        documents = documents.filter(status=status)
    if batch_id:
        documents = documents.filter(batch_id=batch_id)
    return documents


def batch_progress(*, batch: UploadBatch) -> BatchProgress:
    rows = list(batch.documents.values_list("status", "progress", "processing_started_at"))
    return progress_of(rows, started_at=batch.created_at)


def progress_of(rows: list[tuple[str, float, object]], *, started_at) -> BatchProgress:
    total = len(rows)
    indexed = sum(1 for status, _, _ in rows if status == Document.Status.INDEXED)
    failed = sum(1 for status, _, _ in rows if status == Document.Status.FAILED)
    done_work = sum(1.0 if status in (Document.Status.INDEXED, Document.Status.FAILED) else progress for status, progress, _ in rows)
    fraction = done_work / total if total else 1.0
    starts = [s for _, _, s in rows if s is not None]
    eta = None
    if starts and 0.02 < fraction < 1.0:
        elapsed = (timezone.now() - max(min(starts), started_at)).total_seconds()
        eta = max(0.0, elapsed * (1 - fraction) / fraction)
    return BatchProgress(
        total=total, indexed=indexed, failed=failed, pending=total - indexed - failed, fraction=fraction, eta_seconds=eta
    )


def document_status_payload(document: Document) -> dict:
    """What the documents page and the API show about one document."""
    return {
        "id": document.pk,
        "title": document.title,
        "source_path": document.source_path,
        "collection": document.collection.name,
        "kind": document.kind,
        "status": document.status,
        "status_label": document.get_status_display(),
        "progress": round(document.progress, 3),
        "error": document.error,
        "version": document.version,
        "chunks": document.chunk_count,
        "pages": document.page_count,
        "size_bytes": document.size_bytes,
        "updated_at": document.updated_at.isoformat(),
    }


# --- Search ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Passage:
    """A retrieved passage as the prompt, the page and the API see it: one chunk, or adjacent chunks merged."""

    n: int
    chunk_id: int
    chunk_ids: tuple[int, ...]
    document_id: int
    collection_id: int
    title: str
    heading_path: tuple[str, ...]
    page: int | None
    text: str
    score: float  # cosine similarity of the best chunk to the question

    @property
    def url(self) -> str:
        """The passage page, highlighting through the last chunk when neighbours were merged."""
        url = reverse("kb:passage", args=[self.chunk_id])
        return f"{url}?end={self.chunk_ids[-1]}" if len(self.chunk_ids) > 1 else url

    def as_dict(self) -> dict:
        return {
            "n": self.n,
            "chunk_id": self.chunk_id,
            "chunk_ids": list(self.chunk_ids),
            "document_id": self.document_id,
            "collection_id": self.collection_id,
            "title": self.title,
            "heading_path": list(self.heading_path),
            "page": self.page,
            "text": self.text,
            "score": round(self.score, 4),
            "url": self.url,
        }


@dataclass
class _Group:
    """Chunks of one document that will become one passage (consecutive ordinals)."""

    chunks: list[Chunk]
    score: float

    def adjacent_to(self, chunk: Chunk) -> bool:
        ordinals = [c.ordinal for c in self.chunks]
        return chunk.document_id == self.chunks[0].document_id and min(ordinals) - 1 <= chunk.ordinal <= max(ordinals) + 1


MAX_MERGED_CHUNKS = 3
SEARCH_MODES = ("hybrid", "dense", "sparse")


def collections_readable(*, user) -> list[int]:
    """Collections whose passages, titles and files `user` may see: the one reading rule of every surface.

    A superuser reads everything; an active signed-in user reads collections open to everyone signed in plus those
    shared with one of their groups; an anonymous visitor reads only public collections (the widget decides whether
    anonymous use is allowed at all); an inactive user reads nothing. `user=None` is internal use with no user
    (commands run without --user). Computed on every call, so a change of groups applies to the next question.
    """
    collections = Collection.objects.all()
    if user is None or (user.is_authenticated and user.is_active and user.is_superuser):
        return list(collections.values_list("pk", flat=True))
    if not user.is_authenticated:
        return list(collections.filter(public=True).values_list("pk", flat=True))
    if not user.is_active:
        return []
    shared = Q(access=Collection.Access.EVERYONE) | Q(access=Collection.Access.GROUPS, groups__in=user.groups.all())
    return list(collections.filter(shared).values_list("pk", flat=True).distinct())


def documents_readable(*, user) -> QuerySet[Document]:
    return Document.objects.filter(collection_id__in=collections_readable(user=user))


def chunks_readable(*, user) -> QuerySet[Chunk]:
    return Chunk.objects.filter(document__collection_id__in=collections_readable(user=user))


def passages_search(
    *,
    user,
    query: str,
    k: int | None = None,
    collection_ids: list[int] | None = None,
    mode: str = "hybrid",
    floor: float | None = None,
) -> list[Passage]:
    """The best passages for `query` among the collections `user` may read, numbered 1..n in rank order.

    Ranking is Qdrant's fusion of dense and lexical candidates (or one side alone, for evaluation). A hit whose cosine
    similarity to the question is under the floor does not count as found, so an empty list means "not in the
    knowledge base". A document gives at most SEARCH_MAX_PER_DOCUMENT passages; a hit next to an already chosen chunk of
    the same document is merged into that passage instead of taking a slot.
    """
    if mode not in SEARCH_MODES:
        raise ValueError(f"mode must be one of {SEARCH_MODES}")
    k = k or settings.SEARCH_TOP_K
    floor = settings.SEARCH_SCORE_FLOOR if floor is None else floor
    readable = set(collections_readable(user=user))
    scope = sorted(readable if collection_ids is None else readable.intersection(collection_ids))
    query = query.strip()
    if not scope or not query:
        return []
    dense = embedding.embed_query(query)
    hits = vectorstore.points_search(
        dense=dense if mode != "sparse" else None,
        sparse=embedding.sparse_query_vector(query) if mode != "dense" else None,
        collection_ids=scope,
        limit=max(4 * k, 20),
        prefetch_limit=settings.SEARCH_PREFETCH,
        with_dense=True,
    )
    groups = _groups_of(hits, dense=dense, k=k, floor=floor)
    return [_passage(n, group) for n, group in enumerate(groups, start=1)]


def _groups_of(hits: list[vectorstore.ScoredPoint], *, dense: list[float], k: int, floor: float) -> list[_Group]:
    # Hits resolve through Chunk rows: points of a version being replaced or deleted have none and drop out here.
    chunks = Chunk.objects.select_related("document").in_bulk([h.point_id for h in hits], field_name="point_id")
    query_vector = np.asarray(dense, dtype=np.float32)
    groups: list[_Group] = []
    for hit in hits:
        chunk = chunks.get(uuid.UUID(hit.point_id))
        if chunk is None:
            continue
        score = float(np.dot(query_vector, np.asarray(hit.dense, dtype=np.float32))) if hit.dense is not None else 0.0
        if score < floor:
            continue
        same_document = [g for g in groups if g.chunks[0].document_id == chunk.document_id]
        neighbour = next((g for g in same_document if g.adjacent_to(chunk) and len(g.chunks) < MAX_MERGED_CHUNKS), None)
        if neighbour is not None:
            neighbour.chunks.append(chunk)
            neighbour.score = max(neighbour.score, score)
        elif len(same_document) < settings.SEARCH_MAX_PER_DOCUMENT and len(groups) < k:
            groups.append(_Group(chunks=[chunk], score=score))
    return groups


def _passage(n: int, group: _Group) -> Passage:
    chunks = sorted(group.chunks, key=lambda c: c.ordinal)
    document = chunks[0].document
    return Passage(
        n=n,
        chunk_id=chunks[0].pk,
        chunk_ids=tuple(c.pk for c in chunks),
        document_id=document.pk,
        collection_id=document.collection_id,
        title=document.title,
        heading_path=tuple(chunks[0].heading_path or ()),
        page=chunks[0].page_start,
        text=_merged_text(chunks),
        score=group.score,
    )


def _merged_text(chunks: list[Chunk]) -> str:
    """One chunk's text, or the span of the document's text that adjacent chunks cover (their overlap once)."""
    if len(chunks) == 1:
        return chunks[0].text
    start, end = chunks[0].char_start, max(c.char_end for c in chunks)
    text = Document.objects.filter(pk=chunks[0].document_id).values_list("extracted_text", flat=True).first() or ""
    span = text[start:end].strip()
    return span or "\n".join(c.text for c in chunks)
