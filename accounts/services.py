"""API tokens: creation (the secret is returned once), revocation, and authenticating a request's bearer secret."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.db.models import QuerySet
from django.utils import timezone

from .models import ApiToken

SECRET_PREFIX = "lnt_"  # makes a Lantern token recognisable in a config file or a secret scanner
SHOWN_PREFIX_CHARS = 12
MAX_NAME_CHARS = 100
# Recording every use would write to the database on every API call; once a minute is enough to see a token is alive.
LAST_USED_PRECISION = timedelta(minutes=1)


class ApiTokenNotFound(Exception):
    """No such token among the user's own."""


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_token_create(*, user, name: str) -> tuple[ApiToken, str]:
    """A new token for `user` and its secret. Only the digest is stored, so the secret is returned here and never again."""
    name = " ".join(name.split())[:MAX_NAME_CHARS]
    if not name:
        raise ValueError("Give the token a name, so you can tell it apart later.")
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, prefix=secret[:SHOWN_PREFIX_CHARS], digest=token_digest(secret))
    return token, secret


def api_tokens_list(*, user) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user)


def api_token_revoke(*, user, token_id: int) -> ApiToken:
    """Revoke one of the user's own tokens; it stops working on the next request. Revoking twice keeps the first time."""
    try:
        token = ApiToken.objects.get(pk=token_id, user=user)
    except ApiToken.DoesNotExist:
        raise ApiTokenNotFound(token_id) from None
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def api_token_authenticate(*, secret: str) -> ApiToken | None:
    """The live token whose secret this is (its user active), with its last use recorded; None otherwise."""
    if not secret.startswith(SECRET_PREFIX):
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=token_digest(secret), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_PRECISION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
