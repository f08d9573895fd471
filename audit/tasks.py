"""Celery tasks of the audit log (thin: they call audit.services)."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="audit.purge")
def purge() -> dict:
    """Apply the retention settings; beat runs it daily. Safe to run twice."""
    result = services.audit_events_purge()
    return {"deleted": result.deleted, "redacted": result.redacted}
