"""Who is calling the JSON API: a personal token (`Authorization: Bearer lnt_...`) or the browser's session.

A session is a cookie the browser sends by itself, so unsafe methods with it need Django's CSRF token
(`X-CSRFToken` header); a token is sent deliberately by a script and needs none. A token that is sent but not valid
is refused outright, never passed over for the session.
"""

from __future__ import annotations

from django.conf import settings
from ninja.errors import AuthenticationError, HttpError
from ninja.security import HttpBearer
from ninja.security.apikey import APIKeyCookie
from ninja.utils import check_csrf

from .services import api_token_authenticate

INVALID_TOKEN = (
    "The API token is not valid: it was revoked, mistyped, or its owner's account is disabled. "
    "Create a new one on the API tokens page."
)
CSRF_FAILED = (
    "CSRF check failed: with a browser session, send the csrftoken cookie's value in the X-CSRFToken header, "
    "or call the API with a token (Authorization: Bearer <token>)."
)


class BearerToken(HttpBearer):
    def authenticate(self, request, token: str):
        found = api_token_authenticate(secret=token.strip())
        if found is None:
            raise AuthenticationError(401, INVALID_TOKEN)
        request.api_token = found
        request.user = found.user  # code below the API that reads request.user sees the token's owner
        return found.user


class SessionWithCsrf(APIKeyCookie):
    """The signed-in browser session; CSRF is checked only once a session user is there (anonymous callers get 401)."""

    param_name = settings.SESSION_COOKIE_NAME

    def _get_key(self, request) -> str | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        if not getattr(request, "_ninja_csrf_exempt", False) and check_csrf(request):
            raise HttpError(403, CSRF_FAILED)
        return request.COOKIES.get(self.param_name) or "session"

    def authenticate(self, request, key: str | None):
        user = request.user
        return user if key and user.is_authenticated and user.is_active else None
