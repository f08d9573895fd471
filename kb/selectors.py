"""Reads of the knowledge base, shaped for the pages, the API and the CLI."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils import timezone

from .models import Document, UploadBatch


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


def documents_list(*, collection_id: int | None = None, status: str = "", batch_id: int | None = None) -> QuerySet[Document]:
    documents = Document.objects.select_related("collection").defer("extracted_text")
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
