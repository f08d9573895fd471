"""Content health actions: reminding document owners of reviews that are overdue."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse

from . import selectors

logger = logging.getLogger(__name__)

DUMMY_EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"


@dataclass
class ReminderRun:
    """What one reminder run prepared: per owner username, the titles of their overdue documents, and who got mail."""

    lists: dict[str, list[str]] = field(default_factory=dict)
    emailed: list[str] = field(default_factory=list)
    not_emailed: list[str] = field(default_factory=list)  # no address, or no email backend configured


def email_configured() -> bool:
    return bool(settings.EMAIL_BACKEND) and settings.EMAIL_BACKEND != DUMMY_EMAIL_BACKEND


def review_reminders_send(*, today: date | None = None) -> ReminderRun:
    """Prepare each owner's list of overdue documents and email it to them when an email backend is configured.

    Owners always see the same list on their own page (health:mine); the email only points them there. A failed
    send is logged and the other owners still get theirs.
    """
    run = ReminderRun()
    link = settings.PORTAL_URL.rstrip("/") + reverse("health:mine") if settings.PORTAL_URL else reverse("health:mine")
    for reminder in selectors.review_reminders(today=today):
        owner = reminder.owner
        run.lists[owner.get_username()] = [d.title for d in reminder.overdue]
        if not (email_configured() and owner.email):
            run.not_emailed.append(owner.get_username())
            continue
        count = len(reminder.overdue)
        body = render_to_string("health/review_reminder.txt", {"owner": owner, "documents": reminder.overdue, "link": link})
        subject = f"Lantern: {count} document{'s' if count != 1 else ''} overdue for review"
        try:
            send_mail(subject, body, None, [owner.email])
        except OSError:
            logger.exception("Could not email the review reminder to %s", owner.get_username())
            run.not_emailed.append(owner.get_username())
        else:
            run.emailed.append(owner.get_username())
    logger.info(
        "Review reminders: %d owner(s) with overdue documents, %d emailed", len(run.lists), len(run.emailed)
    )
    return run
