"""How questions get answered, as records: conversations, their messages, feedback, and what nobody could find."""

from __future__ import annotations

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
