"""The ingestion pipeline: claim -> parse -> chunk -> embed (batched across documents) -> index.

Invariant kept by `document_index`: a Document in state INDEXED has exactly the chunks of its `indexed_version` in
the vector store and as Chunk rows. Readers join search hits to Chunk rows, and the rows of a new version replace the
old ones in one database transaction, so a question sees the old version or the new one, never both or neither.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django import db
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from qdrant_client.http import exceptions as qdrant_exceptions

from kb import vectorstore
from kb.models import Chunk, Document

from . import embedding
from .chunking import chunk_document
from .parsers import parse
from .services import title_from_name
from .types import ChunkDraft, IngestionError

logger = logging.getLogger(__name__)

Status = Document.Status
# Share of the progress bar each stage ends at; embedding dominates the time.
PARSED, CHUNKED, EMBEDDED = 0.1, 0.15, 0.95


class ClaimLost(Exception):
    """Another run took the document over (a new upload, or recovery after this run was presumed dead)."""


@dataclass
class Prepared:
    document: Document
    version: int
    text: str
    drafts: list[ChunkDraft]
    vectors: list | None = None


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    db.OperationalError,
    db.InterfaceError,
    ConnectionError,
    TimeoutError,
    qdrant_exceptions.ResponseHandlingException,
)


def document_claim(*, document_id: int, token: str) -> Document | None:
    """Take a queued document for this run (or resume our own claim when the same task is redelivered)."""
    now = timezone.now()
    claimed = (
        Document.objects.filter(pk=document_id)
        .filter(status__in=[Status.QUEUED, *Document.ACTIVE_STATUSES])
        .exclude(file="")
        .filter(Q(status=Status.QUEUED) | Q(claim_token=token))
        .update(status=Status.PARSING, claim_token=token, heartbeat_at=now, processing_started_at=now, progress=0.0, error="")
    )
    return Document.objects.get(pk=document_id) if claimed else None


def document_report(document: Document, *, token: str, status: str | None = None, progress: float | None = None) -> None:
    """Record a stage or progress under our claim; raises ClaimLost when the document is no longer ours."""
    fields = {"heartbeat_at": timezone.now()}
    if status:
        fields["status"] = status
    if progress is not None:
        fields["progress"] = progress
    if not Document.objects.filter(pk=document.pk, claim_token=token).update(**fields):
        raise ClaimLost(document.pk)


def document_fail(document: Document, *, token: str, reason: str) -> None:
    """Mark only this document failed, with a reason an admin can act on. Its previous version keeps answering."""
    Document.objects.filter(pk=document.pk, claim_token=token).update(
        status=Status.FAILED, error=reason, claim_token="", heartbeat_at=timezone.now()
    )
    logger.info("Document %s failed: %s", document.pk, reason)


def document_prepare(document: Document, *, token: str) -> Prepared:
    """Parse and chunk one document (permanent problems raise IngestionError)."""
    with document.file.open("rb") as handle:
        data = handle.read()
    parsed = parse(data, filename=document.source_path)
    title = document.title
    if parsed.title and parsed.title.strip() and document.title == _default_title(document):
        title = parsed.title.strip()[:500]
    Document.objects.filter(pk=document.pk).update(kind=parsed.kind, page_count=parsed.page_count, title=title)
    document.kind, document.page_count, document.title = parsed.kind, parsed.page_count, title
    document_report(document, token=token, status=Status.CHUNKING, progress=PARSED)
    chunked = chunk_document(parsed, title=title)
    if not chunked.drafts:
        raise IngestionError(f"{document.source_path} contains no text to index.")
    document_report(document, token=token, status=Status.EMBEDDING, progress=CHUNKED)
    return Prepared(document=document, version=document.version, text=chunked.text, drafts=chunked.drafts)


def _default_title(document: Document) -> str:
    return title_from_name(document.source_path)


def documents_embed(prepared: list[Prepared], *, token: str, batch_size: int) -> None:
    """Embed every draft of every document in shared batches, reporting each document's progress as it goes."""
    # Texts of similar length share a batch, so little padding is computed. Measured in word pieces: model.encode
    # sorts by characters, and characters per word piece vary too much (links, numbers, tables) for that to group
    # well; on the handbook this computes a quarter fewer word pieces than one model.encode call over the same texts.
    items = [(p, i) for p in prepared for i in range(len(p.drafts))]
    lengths = embedding.count_tokens_each([p.drafts[i].embed_text for p, i in items])
    queue = [item for _, item in sorted(zip(lengths, items), key=lambda pair: pair[0])]
    for p in prepared:
        p.vectors = [None] * len(p.drafts)
    for start in range(0, len(queue), batch_size):
        window = queue[start : start + batch_size]
        vectors = embedding.embed_texts([p.drafts[i].embed_text for p, i in window])
        for (p, i), vector in zip(window, vectors):
            p.vectors[i] = vector
        for p in {id(p): p for p, _ in window}.values():
            done = sum(v is not None for v in p.vectors) / len(p.vectors)
            document_report(p.document, token=token, progress=CHUNKED + (EMBEDDED - CHUNKED) * done)


def document_index(p: Prepared, *, token: str) -> None:
    """Write the new version's points, swap its Chunk rows in, then remove every other version's points."""
    document = p.document
    points = [
        vectorstore.PointDraft(
            point_id=document.point_id(version=p.version, ordinal=d.ordinal),
            dense=vector,
            sparse=embedding.sparse_document_vector(d.embed_text),
            payload={
                "document_id": document.pk,
                "collection_id": document.collection_id,
                "version": p.version,
                "ordinal": d.ordinal,
                "page": d.page_start,
            },
        )
        for d, vector in zip(p.drafts, p.vectors)
    ]
    vectorstore.points_upsert(points)
    with transaction.atomic():
        if not Document.objects.select_for_update().filter(pk=document.pk, claim_token=token, version=p.version).exists():
            raise ClaimLost(document.pk)
        Chunk.objects.filter(document=document).delete()
        Chunk.objects.bulk_create(_chunk_rows(p))
        Document.objects.filter(pk=document.pk).update(
            indexed_version=p.version, extracted_text=p.text, chunk_count=len(p.drafts), heartbeat_at=timezone.now()
        )
    if p.version > 1:  # a first version has no other version's points; local mode scans every point to delete
        vectorstore.points_delete(document_id=document.pk, keep_version=p.version)
    Document.objects.filter(pk=document.pk, claim_token=token).update(
        status=Status.INDEXED, progress=1.0, claim_token="", indexed_at=timezone.now()
    )
    from health.checks import document_similarity_enqueue  # content health: this version against the rest

    document_similarity_enqueue(document_id=document.pk)


def _chunk_rows(p: Prepared) -> list[Chunk]:
    return [
        Chunk(
            document=p.document,
            ordinal=d.ordinal,
            text=d.text,
            page_start=d.page_start,
            page_end=d.page_end,
            heading_path=list(d.heading_path),
            char_start=d.char_start,
            char_end=d.char_end,
            token_count=d.token_count,
            point_id=p.document.point_id(version=p.version, ordinal=d.ordinal),
        )
        for d in p.drafts
    ]


def documents_process(*, document_ids: list[int], token: str, batch_size: int | None = None) -> None:
    """Process a group of documents; one document's permanent error fails only that document.

    Transient errors (database, vector store connection) propagate so the task retries; the claim token lets the
    retry resume the same documents.
    """
    started = time.monotonic()
    batch_size = batch_size or settings.EMBEDDING_BATCH_SIZE
    prepared = []
    for document_id in document_ids:
        document = document_claim(document_id=document_id, token=token)
        if document is None:
            continue  # indexed already, deleted, or owned by another live run
        ok, item = _guarded(document, token, lambda d=document: document_prepare(d, token=token))
        if ok:
            prepared.append(item)
    if not prepared:
        return
    try:
        documents_embed(prepared, token=token, batch_size=batch_size)
    except ClaimLost:
        prepared = [
            item for item in prepared
            if _guarded(item.document, token, lambda i=item: documents_embed([i], token=token, batch_size=batch_size))[0]
        ]
    for item in prepared:
        _guarded(item.document, token, lambda i=item: document_index(i, token=token))
    logger.info("Processed %d document(s) in %.1fs", len(prepared), time.monotonic() - started)


def _guarded(document: Document, token: str, step) -> tuple[bool, object]:
    """Run one document's step: (True, result), or (False, None) when the document failed or was taken over."""
    try:
        return True, step()
    except TRANSIENT_ERRORS:
        raise
    except IngestionError as error:
        document_fail(document, token=token, reason=str(error))
    except ClaimLost:
        logger.info("Document %s was taken over by another run; leaving it", document.pk)
    except Exception as error:  # a library bug on an odd file must fail that file, not stall the whole batch
        logger.exception("Internal error on document %s", document.pk)
        document_fail(
            document,
            token=token,
            reason=f"{document.source_path} could not be processed: internal error ({type(error).__name__}), "
            f"logged under document id {document.pk}. Retry it, or report it if it fails again.",
        )
    return False, None
