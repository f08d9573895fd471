"""Personal API tokens: how scripts act as their owner on the JSON API."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    """A secret that authenticates as `user` on /api/v1. Only its sha256 is stored: the secret itself is shown once,
    when the token is created, and cannot be recovered afterwards (a lost token is revoked and replaced)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. “nightly upload script”.")
    # The first characters of the secret, shown in lists so an owner can tell their tokens apart.
    prefix = models.CharField(max_length=16)
    digest = models.CharField("sha256 of the secret", max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
