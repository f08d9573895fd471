"""The JSON API under /api/v1: one NinjaAPI, its authentication, rate limits and JSON errors, and the apps' routers.

Endpoints are thin edges over the same services the pages use (chat/api.py, kb/api.py). Every error, including an
unknown route, a wrong method and a request Django refuses, is JSON with a `detail` message.
"""

from __future__ import annotations

import functools
import logging
import math

from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI, Swagger
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError

from accounts.api_auth import BearerToken, SessionWithCsrf
from accounts.throttling import API_THROTTLES

logger = logging.getLogger(__name__)

DESCRIPTION = """Ask questions of Lantern's knowledge base and get cited answers, read your conversations, and (staff)
manage documents.

**Authentication.** In a browser signed in to Lantern, the session is used; unsafe methods then need the
`X-CSRFToken` header. Scripts send a personal token, created on the *API tokens* page:
`Authorization: Bearer lnt_...`.

**Errors** are JSON: `{"detail": "what went wrong"}` with 400, 401, 403, 404, 409, 413, 422 or 429
(with `Retry-After`)."""

api = NinjaAPI(
    title="Lantern API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api",
    auth=[BearerToken(), SessionWithCsrf()],
    throttle=API_THROTTLES,
    # Swagger UI's assets come from the ninja app's static files (no CDN); its validator badge would call out to
    # swagger.io, so it is switched off.
    docs=Swagger(settings={"validatorUrl": None}),
    docs_decorator=login_required,
)

NOT_SIGNED_IN = "Sign in to Lantern, or send a personal API token as 'Authorization: Bearer <token>'."
UNKNOWN_ROUTE = "No such endpoint. The API's endpoints are listed at /api/v1/docs."


@api.exception_handler(ValidationError)
def _validation_error(request, exc: ValidationError):
    problems = [f"{_field_name(error.get('loc', ()))}: {error.get('msg', 'invalid')}" for error in exc.errors]
    return api.create_response(request, {"detail": "; ".join(problems) or "Invalid request.", "errors": exc.errors}, status=422)


def _field_name(loc) -> str:
    """`["body", "payload", "question"]` -> "question"; `["query", "limit"]` -> "limit"."""
    parts = [str(part) for part in loc]
    if parts and parts[0] in ("body", "form", "file") and len(parts) > 2:
        parts = parts[2:]
    elif parts and parts[0] in ("body", "query", "path", "form", "file", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts) or "request"


@api.exception_handler(AuthenticationError)
def _not_authenticated(request, exc: AuthenticationError):
    detail = NOT_SIGNED_IN if exc.message == "Unauthorized" else exc.message
    response = api.create_response(request, {"detail": detail}, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="lantern"'
    return response


@api.exception_handler(Throttled)
def _throttled(request, exc: Throttled):
    wait = f" Try again in {math.ceil(exc.wait)} seconds." if exc.wait else ""
    return api.create_response(request, {"detail": f"Too many requests: slow down.{wait}"}, status=429)


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    detail = "The request body is not valid JSON." if exc.message.startswith("Cannot parse request body") else exc.message
    return api.create_response(request, {"detail": detail}, status=exc.status_code)


@api.exception_handler(Http404)
def _not_found(request, exc: Http404):
    message = str(exc)
    detail = message if message and not message.startswith("docs_url") else UNKNOWN_ROUTE
    return api.create_response(request, {"detail": detail}, status=404)


@api.exception_handler(RequestDataTooBig)
def _too_big(request, exc: RequestDataTooBig):
    return api.create_response(request, {"detail": "The request body is too large."}, status=413)


@api.exception_handler(SuspiciousOperation)
def _refused(request, exc: SuspiciousOperation):
    return api.create_response(request, {"detail": f"The request was refused: {exc}"}, status=400)


@api.exception_handler(Exception)
def _internal_error(request, exc: Exception):
    logger.exception("API request %s %s failed", request.method, request.path)
    return api.create_response(
        request, {"detail": "Something went wrong on the server; it has been logged. Please try again."}, status=500
    )


def _routers() -> None:
    from chat.api import router as chat_router
    from kb.api import router as kb_router

    api.add_router("/", chat_router)
    api.add_router("/", kb_router)


_routers()


def _json_method_errors(view):
    """ninja answers a wrong method with a plain-text 405; the API's callers get JSON like every other error."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and not response.get("Content-Type", "").startswith("application/json"):
            allowed = response.get("Allow", "")
            json_response = JsonResponse({"detail": f"{request.method} is not allowed here; use {allowed}."}, status=405)
            json_response["Allow"] = allowed
            return json_response
        return response

    return wrapper


@csrf_exempt  # nothing happens here, whatever the method; the caller gets a JSON 404 rather than a CSRF page
def unknown_route(request, rest: str = ""):
    return JsonResponse({"detail": UNKNOWN_ROUTE}, status=404)


def _urlpatterns() -> list:
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        # ninja's root view only exists to be reversed; it answers with an HTML 404 of its own.
        pattern.callback = unknown_route if pattern.name == "api-root" else _json_method_errors(pattern.callback)
    return [path("", include((patterns, app_name), namespace=namespace)), re_path(r"^(?P<rest>.*)$", unknown_route)]


urlpatterns = _urlpatterns()
