"""Small helpers shared by tests: run the ingestion pipeline synchronously and look inside the vector store."""

from __future__ import annotations

import time

from ingestion import pipeline
from ingestion.services import IncomingFile, documents_upload
from kb import vectorstore
from kb.models import Document


def markdown(title: str, *sections: tuple[str, str]) -> bytes:
    body = [f"# {title}", ""]
    for heading, text in sections:
        body += [f"## {heading}", "", text, ""]
    return "\n".join(body).encode()


def upload(collection, *files: tuple[str, bytes], user=None):
    return documents_upload(collection=collection, files=[IncomingFile(name=n, data=d) for n, d in files], user=user)


def process(*documents: Document, token: str = "test-run") -> list[Document]:
    """Run the pipeline in this process (what a worker does for one task) and return fresh rows."""
    pipeline.documents_process(document_ids=[d.pk for d in documents], token=token)
    return [Document.objects.get(pk=d.pk) for d in documents]


def upload_and_process(collection, *files: tuple[str, bytes]) -> list[Document]:
    result = upload(collection, *files)
    return process(*result.queued) if result.queued else []


def point_ids(document: Document) -> set[str]:
    return vectorstore.points_ids(document_id=document.pk)


def chunk_point_ids(document: Document) -> set[str]:
    return {str(p) for p in document.chunks.values_list("point_id", flat=True)}


def wait_for(condition, *, timeout: float, interval: float = 0.2, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout:.0f}s waiting for {message}")
