"""The audit log: who did what, when, from where. Rows are written by audit.services and never edited afterwards;
only the retention task (audit.tasks.purge) removes them, or blanks question text once it is old enough."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    class Action(models.TextChoices):
        QUESTION_ASKED = "question.asked", "Question asked"
        LOGIN = "auth.login", "Signed in"
        LOGOUT = "auth.logout", "Signed out"
        LOGIN_FAILED = "auth.login_failed", "Sign-in refused"
        ADMIN_ADDITION = "admin.addition", "Admin: added"
        ADMIN_CHANGE = "admin.change", "Admin: changed"
        ADMIN_DELETION = "admin.deletion", "Admin: deleted"
        DOCUMENT_UPLOADED = "document.uploaded", "Document uploaded"
        DOCUMENT_DELETED = "document.deleted", "Document deleted"
        DOCUMENT_RETRIED = "document.retried", "Document retried"

    class Via(models.TextChoices):
        WEB = "web", "Web pages"
        ADMIN = "admin", "Django admin"
        API = "api", "JSON API"
        WIDGET = "widget", "Chat widget"
        SSO = "sso", "Single sign-on"
        SYSTEM = "system", "Command line or worker"

    time = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The username at the time, kept when the account is deleted (the foreign key then becomes empty).
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=32, choices=Action.choices, db_index=True)
    # What the action was done to, as "<app>.<model>:<id> <description>" ("kb.document:12 Leave policy").
    target = models.CharField(max_length=300, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    via = models.CharField(max_length=16, choices=Via.choices, default=Via.SYSTEM)

    class Meta:
        ordering = ["-time", "-id"]
        indexes = [models.Index(fields=["action", "time"])]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.actor_name or '-'} {self.action} {self.target}".strip()
