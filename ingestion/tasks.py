"""Celery tasks: thin wrappers that take ids and call the pipeline or a service."""

from __future__ import annotations

import uuid
from datetime import timedelta

from celery import shared_task
from celery.signals import worker_ready

from kb import vectorstore

from . import pipeline, services


@shared_task(
    name="ingestion.process_documents",
    bind=True,
    acks_late=True,
    autoretry_for=pipeline.TRANSIENT_ERRORS,
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
)
def process_documents(self, document_ids: list[int]) -> None:
    # The task id doubles as the claim token, so a redelivered or retried task resumes its own documents.
    pipeline.documents_process(document_ids=document_ids, token=self.request.id or uuid.uuid4().hex)


@shared_task(name="ingestion.recover_stalled")
def recover_stalled() -> list[int]:
    return services.documents_recover_stalled()


@worker_ready.connect
def recover_on_worker_start(**_kwargs) -> None:
    """Finish or redo what a killed worker left behind.

    An embedded vector store is locked to this one process, so any document another run was processing is
    abandoned; with a shared store, only documents whose worker stopped reporting are taken over.
    """
    stale_after = timedelta(0) if vectorstore.is_embedded() else None
    services.documents_recover_stalled(stale_after=stale_after)
