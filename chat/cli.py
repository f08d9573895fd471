"""What the management commands share: acting as a named user."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management import CommandError


def add_user_argument(parser) -> None:
    parser.add_argument(
        "--user",
        default=None,
        help="Answer as this user: only collections they may read are searched (default: every collection).",
    )


def user_named(username: str | None):
    """The active user called `username`, or None (no user: every collection) when no name is given."""
    if username is None:
        return None
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"No user named {username!r}.")
    if not user.is_active:
        raise CommandError(f"The user {username!r} is inactive and may read nothing.")
    return user
