"""Periodic content health work (celery beat): thin wrappers over health.services."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="health.review_reminders")
def review_reminders() -> dict[str, list[str]]:
    """Prepare each owner's overdue list and email it when email is configured; returns the lists by username."""
    return services.review_reminders_send().lists
