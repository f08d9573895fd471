"""What the audit log hears without anyone calling it: sign-ins and sign-outs, Django admin actions, documents
added and deleted (the ingestion and kb services stay unaware of auditing)."""

from __future__ import annotations

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry, LogEntryManager
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from kb.models import Document

from .models import AuditEvent
from .services import audit_record, origin_user, target_of

ADMIN_ACTIONS = {
    ADDITION: AuditEvent.Action.ADMIN_ADDITION,
    CHANGE: AuditEvent.Action.ADMIN_CHANGE,
    DELETION: AuditEvent.Action.ADMIN_DELETION,
}


@receiver(user_logged_in, dispatch_uid="audit-login")
def _logged_in(sender, request, user, **kwargs) -> None:
    backend = getattr(user, "backend", "") or ""
    audit_record(action=AuditEvent.Action.LOGIN, actor=user, request=request, detail={"backend": backend})


@receiver(user_logged_out, dispatch_uid="audit-logout")
def _logged_out(sender, request, user, **kwargs) -> None:
    if user is not None:
        audit_record(action=AuditEvent.Action.LOGOUT, actor=user, request=request)


@receiver(user_login_failed, dispatch_uid="audit-login-failed")
def _login_failed(sender, credentials, request=None, **kwargs) -> None:
    # `credentials` has the password already masked by Django; only the name typed is kept.
    name = str(credentials.get("username", ""))[:150]
    audit_record(action=AuditEvent.Action.LOGIN_FAILED, actor_name=name, request=request, detail={"username": name})


def log_entry_record(entry: LogEntry) -> None:
    audit_record(
        action=ADMIN_ACTIONS.get(entry.action_flag, AuditEvent.Action.ADMIN_CHANGE),
        actor=entry.user,
        target=f"{entry.content_type.app_label}.{entry.content_type.model}:{entry.object_id} {entry.object_repr}"
        if entry.content_type_id else entry.object_repr,
        detail={"change": entry.get_change_message(), "log_entry_id": entry.pk},
    )


@receiver(post_save, sender=LogEntry, dispatch_uid="audit-admin-log-entry")
def _admin_logged(sender, instance: LogEntry, created: bool, raw: bool = False, **kwargs) -> None:
    if created and not raw:
        log_entry_record(instance)


# The admin's "delete selected" action logs several objects with bulk_create, which sends no post_save; the entries
# it returns are recorded here so a bulk deletion is audited object by object like a single one.
_log_actions = LogEntryManager.log_actions


def _log_actions_audited(self, *args, **kwargs):
    entries = _log_actions(self, *args, **kwargs)
    if isinstance(entries, list) and len(entries) > 1:
        for entry in entries:
            log_entry_record(entry)
    return entries


LogEntryManager.log_actions = _log_actions_audited


@receiver(post_save, sender=Document, dispatch_uid="audit-document-uploaded")
def _document_saved(sender, instance: Document, created: bool, raw: bool = False, **kwargs) -> None:
    if created and not raw:
        audit_record(
            action=AuditEvent.Action.DOCUMENT_UPLOADED,
            actor=instance.uploaded_by,
            target=target_of(instance),
            detail={"collection_id": instance.collection_id, "source_path": instance.source_path},
        )


@receiver(post_delete, sender=Document, dispatch_uid="audit-document-deleted")
def _document_deleted(sender, instance: Document, **kwargs) -> None:
    audit_record(
        action=AuditEvent.Action.DOCUMENT_DELETED,
        actor=origin_user(),
        target=f"{instance._meta.label_lower}:{instance.pk} {instance}"[:300],
        detail={"collection_id": instance.collection_id, "source_path": instance.source_path},
    )

