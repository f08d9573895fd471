"""How questions get answered, as records: conversations, their messages, feedback, what nobody could find, and the
keys that let intranet pages embed the chat widget."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models


class Conversation(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations")
    title = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]

    def __str__(self) -> str:
        return self.title or f"Conversation {self.pk}"


class Message(models.Model):
    """One turn. An assistant message keeps the passages it was shown and its checked citations, so feedback and
    later review see exactly what the asker saw, even after the documents change."""

    class Role(models.TextChoices):
        USER = "user", "User"
        ASSISTANT = "assistant", "Assistant"

    class Status(models.TextChoices):
        STREAMING = "streaming", "Streaming"
        COMPLETE = "complete", "Complete"
        STOPPED = "stopped", "Stopped by the asker"
        FAILED = "failed", "Model unavailable"

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=Role.choices)
    text = models.TextField(blank=True)
    # Assistant messages: the question as searched (follow-ups rewritten to stand alone).
    search_query = models.TextField(blank=True)
    # [{"n": 1, "chunk_id": .., "document_id": .., "title": .., "heading_path": [..], "page": .., "text": .., "score": ..}]
    passages = models.JSONField(default=list, blank=True)
    # [{"n": 1, "sentence": "...", "verified": true, "support": 0.71}]; markers to no passage are already removed.
    citations = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE)
    error = models.TextField(blank=True)
    answered = models.BooleanField(default=True)
    retrieval_ms = models.PositiveIntegerField(null=True, blank=True)
    first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    total_ms = models.PositiveIntegerField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation_id", "id"]

    def __str__(self) -> str:
        return f"{self.role}: {self.text[:60]}"


class Feedback(models.Model):
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="feedback")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="answer_feedback")
    helpful = models.BooleanField()
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["message", "user"], name="one_feedback_per_user_and_message")]

    def __str__(self) -> str:
        return f"{'👍' if self.helpful else '👎'} on message {self.message_id}"


class UnansweredQuestion(models.Model):
    """A question the knowledge base could not answer: nothing above the score floor, or the model abstained.
    Admins read these to learn what content is missing."""

    class Reason(models.TextChoices):
        NO_PASSAGES = "no_passages", "No passage matched"
        ABSTAINED = "abstained", "The model found no answer in the passages"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    message = models.OneToOneField(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="unanswered")
    question = models.TextField()
    search_query = models.TextField(blank=True)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    best_score = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.question[:80]


def widget_key_id_new() -> str:
    return "wk_" + secrets.token_urlsafe(12)


def widget_secret_new() -> str:
    return secrets.token_urlsafe(32)


class WidgetKey(models.Model):
    """What lets an intranet page embed the chat widget: the origins allowed to embed it, the secret its backend
    signs identity tokens with, and whether visitors nobody vouches for may ask (public collections only).

    The key id is public (it sits in the host page); the secret never leaves the intranet's backend and the admin.
    """

    key = models.CharField("key id", max_length=64, unique=True, default=widget_key_id_new, editable=False)
    name = models.CharField(max_length=200, help_text="Shown at the top of the widget's panel.")
    allowed_origins = models.JSONField(
        default=list, blank=True,
        help_text="Pages on these origins may embed the widget (scheme, host and port, e.g. https://intranet.example.com).",
    )
    secret = models.CharField(
        max_length=128, default=widget_secret_new, editable=False,
        help_text="The intranet's backend signs widget tokens with this (HS256).",
    )
    allow_anonymous = models.BooleanField(
        default=False, help_text="Visitors without a token or portal session may ask; they read public collections only.",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key})"

    def allows_origin(self, origin: str) -> bool:
        return origin in self.allowed_origins
