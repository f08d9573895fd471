"""Writing and pruning the audit log.

Every surface records through `audit_record`. Where the event happens inside a request, the request's address and
surface (web pages, admin, API, widget) come from `audit.middleware.AuditOriginMiddleware`, which keeps them in a
context variable for the code the request runs; outside a request (commands, workers) events say "system".
Recording never breaks the action it records: a database failure is logged, and the action goes on.
"""

from __future__ import annotations

import contextvars
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from .models import AuditEvent

logger = logging.getLogger(__name__)

PURGE_BATCH = 1000


@dataclass(frozen=True)
class Origin:
    ip: str | None
    via: str
    user: object = None  # the request's (lazy) user: who deleted a document, when the deleting code does not say


_origin: contextvars.ContextVar[Origin | None] = contextvars.ContextVar("audit_origin", default=None)


def origin_of(request) -> Origin:
    path = request.path
    via = (
        AuditEvent.Via.API if path.startswith("/api/")
        else AuditEvent.Via.WIDGET if path.startswith("/widget")
        else AuditEvent.Via.ADMIN if path.startswith("/admin/")
        else AuditEvent.Via.SSO if path.startswith("/oidc/")
        else AuditEvent.Via.WEB
    )
    # REMOTE_ADDR only: behind a reverse proxy, the ASGI server's proxy-headers option puts the client's address there.
    return Origin(ip=request.META.get("REMOTE_ADDR") or None, via=via, user=getattr(request, "user", None))


def origin_set(origin: Origin | None) -> contextvars.Token:
    return _origin.set(origin)


def origin_reset(token: contextvars.Token) -> None:
    _origin.reset(token)


def origin_user():
    """The signed-in user of the current request, or None."""
    user = getattr(_origin.get(), "user", None)
    return user if getattr(user, "is_authenticated", False) else None


def target_of(obj) -> str:
    """"<app>.<model>:<id> <description>" for a model instance."""
    if obj is None:
        return ""
    return f"{obj._meta.label_lower}:{obj.pk} {obj}"[:300]


def audit_record(
    *, action: str, actor=None, target: str = "", detail: dict | None = None, request=None, actor_name: str = ""
) -> AuditEvent | None:
    """One audit event. `request`, when given, supplies the address and surface; otherwise the current request's
    (see the module docstring). Returns None if the event could not be written (logged)."""
    origin = origin_of(request) if request is not None else _origin.get()
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None  # an anonymous visitor is recorded by address only
    try:
        with transaction.atomic():  # a savepoint: a failed insert must not spoil the caller's transaction
            return AuditEvent.objects.create(
                action=action,
                actor=actor,
                actor_name=(actor.get_username() if actor is not None else actor_name)[:150],
                target=target[:300],
                detail=detail or {},
                ip=origin.ip if origin else None,
                via=origin.via if origin else AuditEvent.Via.SYSTEM,
            )
    except DatabaseError:
        logger.exception("Could not record the audit event %s for %s", action, target)
        return None


def audit_question_asked(*, user, text: str, conversation=None, message=None, target: str = "") -> AuditEvent | None:
    """A question put to the knowledge base: in a conversation, or on its own (an anonymous widget visitor, the
    `ask` command). Its text is kept for AUDIT_QUESTION_TEXT_DAYS."""
    detail = {"question": text}
    if message is not None:
        detail["message_id"] = message.pk
    return audit_record(
        action=AuditEvent.Action.QUESTION_ASKED,
        actor=user,
        target=target_of(conversation) if conversation is not None else target,
        detail=detail,
    )


def audit_document_retried(*, document) -> AuditEvent | None:
    """A failed document queued again, by the current request's user (or the system)."""
    return audit_record(
        action=AuditEvent.Action.DOCUMENT_RETRIED,
        actor=origin_user(),
        target=target_of(document),
        detail={"collection_id": document.collection_id, "source_path": document.source_path},
    )


@dataclass(frozen=True)
class PurgeResult:
    deleted: int
    redacted: int


def audit_events_purge(*, now: datetime | None = None) -> PurgeResult:
    """Delete events older than AUDIT_RETENTION_DAYS, and blank the text of questions older than
    AUDIT_QUESTION_TEXT_DAYS (the event itself stays: who asked, when, from where). Idempotent."""
    now = now or timezone.now()
    deleted, _ = AuditEvent.objects.filter(time__lt=now - timedelta(days=settings.AUDIT_RETENTION_DAYS)).delete()
    redacted = 0
    text_cutoff = now - timedelta(days=settings.AUDIT_QUESTION_TEXT_DAYS)
    old_questions = AuditEvent.objects.filter(
        action=AuditEvent.Action.QUESTION_ASKED, time__lt=text_cutoff, detail__has_key="question"
    ).only("id", "detail")
    while batch := list(old_questions[:PURGE_BATCH]):
        for event in batch:
            del event.detail["question"]
            event.detail["question_removed"] = True
        AuditEvent.objects.bulk_update(batch, ["detail"])
        redacted += len(batch)
    return PurgeResult(deleted=deleted, redacted=redacted)
