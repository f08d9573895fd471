"""Celery tasks of the content checks: thin wrappers that take ids and call health.duplicates and health.golden.

(health/tasks.py holds the content health page's own periodic tasks.)
"""

from __future__ import annotations

from celery import shared_task
from django.db import IntegrityError, InterfaceError, OperationalError, transaction

# Imported when Django starts (health.apps registers these tasks), so the services load only when a task runs.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, ConnectionError, TimeoutError)


@shared_task(
    name="health.check_document_similarity",
    acks_late=True,
    # A chunk swapped out by a new version between reading and writing the pairs: the retry reads the new state.
    autoretry_for=(*TRANSIENT_ERRORS, IntegrityError),
    retry_backoff=5,
    retry_backoff_max=120,
    max_retries=5,
)
def check_document_similarity(document_id: int) -> None:
    from . import duplicates

    duplicates.document_similarity_check(document_id=document_id)


def document_similarity_enqueue(*, document_id: int) -> None:
    """Compare a newly indexed version with the rest of the index, once its rows are committed."""
    transaction.on_commit(lambda: check_document_similarity.delay(document_id))


@shared_task(name="health.run_golden_questions", acks_late=True)
def run_golden_questions(run_id: int) -> None:
    from . import golden

    golden.golden_run_execute(run_id=run_id)
