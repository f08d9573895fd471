"""The embeddable chat widget: who may embed it, who is asking, and its endpoints.

An intranet page adds `<script src="https://portal/widget.js" data-key="wk_...">`. The script (static/widget.js) adds
a launcher and an iframe showing /widget/panel, a portal page, so the panel runs on the portal's origin, out of reach
of the host page's CSS and JS. The panel asks through /widget/ask, which relays chat.services' answer events exactly as
the chat page does (chat.views.sse_response).

Who is asking, in this order:
  1. a token the intranet's backend signed with the key's secret (JWT, HS256: sub, groups, iat, exp, aud = key id);
     its user becomes a Django user (created on first use, unusable password) whose groups are the token's groups;
  2. the portal's own session (password or SSO login), when the browser sends its cookie into the iframe;
  3. nobody, if the key allows anonymous use: then only public collections are read.
Every answer then follows kb.selectors.collections_readable for that user, as everywhere else.

Origins: the panel page sends `Content-Security-Policy: frame-ancestors <allowed origins>`, so browsers refuse to show
it inside any other page; the JSON and SSE endpoints refuse a request whose Origin is neither the portal's own nor one
of the key's, and send CORS headers to listed origins only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache, wraps
from urllib.parse import urlencode, urlsplit

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, Group
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.contrib.staticfiles import finders
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware, get_token
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt

from audit.services import audit_question_asked

from . import services
from .models import WidgetKey
from .views import MAX_QUESTION_CHARS, _int_or_none, _payload, _title, sse_response

logger = logging.getLogger(__name__)

TOKEN_ALGORITHM = "HS256"
CLOCK_SKEW_SECONDS = 30  # tolerated difference between the intranet's clock and ours
MAX_TOKEN_GROUPS = 200
_DEFAULT_PORTS = {"http": 80, "https": 443}


class WidgetRefused(Exception):
    """A widget request that cannot be served, with the status, a machine-readable kind and a message for people."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message

    def response(self) -> JsonResponse:
        return JsonResponse({"error": self.message, "kind": self.kind}, status=self.status)


# --- Keys and origins --------------------------------------------------------------------------------------------


def origin_normalize(raw: str) -> str:
    """`scheme://host[:port]` as browsers send it in the Origin header (lower case, no default port, no path)."""
    parts = urlsplit(raw.strip())
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"{raw!r} is not an origin: write it as https://intranet.example.com")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{raw!r} is not an origin: leave out the path, e.g. https://intranet.example.com")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{raw!r} has an invalid port") from None
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != _DEFAULT_PORTS[parts.scheme] else "")


def widget_key_get(*, key: str) -> WidgetKey:
    """The active widget key with this public id."""
    widget_key = WidgetKey.objects.filter(key=key, active=True).first() if key else None
    if widget_key is None:
        raise WidgetRefused(404, "unknown_key", "This widget key does not exist or has been switched off.")
    return widget_key


def origin_check(*, widget_key: WidgetKey, origin: str | None, own_origin: str, same_origin: bool = False) -> None:
    """Refuse a browser request sent from a page whose origin the key does not list. Requests without an Origin
    header come from the portal's own pages (same-origin GETs) or from servers, which CORS does not concern.
    `same_origin` is the browser's own word for it (Sec-Fetch-Site, which no page can set), for a portal behind a
    proxy that hides the scheme or host people use."""
    if origin and origin != own_origin and not same_origin and not widget_key.allows_origin(origin):
        raise WidgetRefused(403, "origin_refused", f"Pages on {origin} may not use this chat widget.")


# --- Tokens -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenClaims:
    username: str
    groups: tuple[str, ...]
    email: str = ""


def widget_token_verify(*, widget_key: WidgetKey, token: str) -> TokenClaims:
    """The identity a token vouches for, if the key's secret signed it for this key, it has not expired, and its
    lifetime (exp - iat) is within WIDGET_TOKEN_MAX_SECONDS."""
    try:
        claims = jwt.decode(
            token, widget_key.secret, algorithms=[TOKEN_ALGORITHM], audience=widget_key.key,
            options={"require": ["sub", "iat", "exp", "aud"]}, leeway=CLOCK_SKEW_SECONDS,
        )
    except jwt.ExpiredSignatureError:
        raise WidgetRefused(401, "token_expired", "The sign-in token has expired; reload the page for a new one.") from None
    except jwt.InvalidSignatureError:
        raise _invalid("its signature does not match this widget key's secret") from None
    except jwt.InvalidAudienceError:
        raise _invalid("it was minted for another widget key") from None
    except jwt.ImmatureSignatureError:
        raise _invalid("it was issued in the future (check the intranet server's clock)") from None
    except jwt.MissingRequiredClaimError as error:
        raise _invalid(f"it has no '{error.claim}' claim") from None
    except jwt.InvalidTokenError as error:
        raise _invalid(f"it could not be read ({error})") from None
    lifetime = claims["exp"] - claims["iat"]
    if lifetime > settings.WIDGET_TOKEN_MAX_SECONDS:
        raise _invalid(f"it is valid for {lifetime:.0f} s, longer than the {settings.WIDGET_TOKEN_MAX_SECONDS} s allowed")
    return TokenClaims(username=_username(claims["sub"]), groups=_groups(claims.get("groups", [])), email=_email(claims))


def _invalid(reason: str) -> WidgetRefused:
    return WidgetRefused(401, "token_invalid", f"The sign-in token was refused: {reason}.")


def _username(sub) -> str:
    if not isinstance(sub, str) or not 0 < len(sub) <= 150:
        raise _invalid("'sub' must be a user name of 1 to 150 characters")
    try:
        UnicodeUsernameValidator()(sub)
    except ValidationError:
        raise _invalid("'sub' may hold only letters, digits and @ . + - _") from None
    return sub


def _groups(groups) -> tuple[str, ...]:
    if not isinstance(groups, list) or len(groups) > MAX_TOKEN_GROUPS:
        raise _invalid(f"'groups' must be a list of at most {MAX_TOKEN_GROUPS} group names")
    if not all(isinstance(name, str) and 0 < len(name.strip()) <= 150 for name in groups):
        raise _invalid("each group must be a name of 1 to 150 characters")
    return tuple(sorted({name.strip() for name in groups}))


def _email(claims: dict) -> str:
    email = claims.get("email")
    return email.strip()[:254] if isinstance(email, str) else ""


def widget_user_sync(*, claims: TokenClaims):
    """The Django user a token names, created on first use with an unusable password; its groups become exactly the
    token's groups, so collections_readable applies the intranet's view of who belongs where.

    A token never acts for a staff or superuser account (a leaked widget secret must not open the admin's reading
    rights) nor revives a deactivated one.
    """
    User = get_user_model()
    try:
        user = User.objects.get(username=claims.username)
    except User.DoesNotExist:
        try:
            with transaction.atomic():
                user = User.objects.create_user(username=claims.username, email=claims.email)  # no password: unusable
        except IntegrityError:  # created meanwhile by a parallel request
            user = User.objects.get(username=claims.username)
    if user.is_staff or user.is_superuser:
        raise WidgetRefused(403, "token_for_admin", "Portal administrators cannot ask through a widget token; sign in to the portal.")
    if not user.is_active:
        raise WidgetRefused(403, "inactive", "This account has been deactivated in the portal.")
    groups = [Group.objects.get_or_create(name=name)[0] for name in claims.groups]
    if set(user.groups.values_list("pk", flat=True)) != {group.pk for group in groups}:
        user.groups.set(groups)
    if claims.email and user.email != claims.email:
        user.email = claims.email
        user.save(update_fields=["email"])
    return user


# --- Who is asking --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WidgetIdentity:
    user: object  # a User, or AnonymousUser for anonymous use
    via: str  # "token", "session" or "anonymous"

    @property
    def name(self) -> str:
        return "" if self.via == "anonymous" else self.user.get_username()


def widget_identity_resolve(*, widget_key: WidgetKey, token: str | None, session_user) -> WidgetIdentity:
    """A token first (the intranet vouches for the person), then the portal's session, then anonymous use if the key
    allows it; otherwise the request is refused."""
    if token:
        return WidgetIdentity(user=widget_user_sync(claims=widget_token_verify(widget_key=widget_key, token=token)), via="token")
    if session_user is not None and session_user.is_authenticated and session_user.is_active:
        return WidgetIdentity(user=session_user, via="session")
    if widget_key.allow_anonymous:
        return WidgetIdentity(user=AnonymousUser(), via="anonymous")
    raise WidgetRefused(401, "sign_in_required", "Sign in to the portal, or open this page from the intranet, to ask questions.")


# --- Endpoints -------------------------------------------------------------------------------------------------------


def _own_origin(request) -> str:
    return request.build_absolute_uri("/").rstrip("/")


def _bearer(request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return (value.strip() or None) if scheme.lower() == "bearer" else None


def _cors(response: HttpResponse, *, request, widget_key: WidgetKey | None) -> HttpResponse:
    """CORS headers for the key's listed origins only (never with credentials: cross-origin callers send a token)."""
    origin = request.headers.get("Origin")
    patch_vary_headers(response, ["Origin"])
    if origin and widget_key is not None and widget_key.allows_origin(origin):
        response["Access-Control-Allow-Origin"] = origin
        if request.method == "OPTIONS":
            response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response["Access-Control-Allow-Headers"] = "Authorization, Content-Type, Accept"
            response["Access-Control-Max-Age"] = "600"
    return response


def widget_endpoint(view):
    """Key lookup, the origin rule, CORS preflight and JSON errors around a widget XHR/SSE endpoint. CSRF is checked
    by the view itself, and only when the portal's session is what identifies the asker."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        widget_key = None
        try:
            widget_key = widget_key_get(key=request.GET.get("key", ""))
            origin_check(
                widget_key=widget_key, origin=request.headers.get("Origin"), own_origin=_own_origin(request),
                same_origin=request.headers.get("Sec-Fetch-Site") == "same-origin",
            )
            response = HttpResponse(status=204) if request.method == "OPTIONS" else view(request, widget_key, *args, **kwargs)
        except WidgetRefused as refused:
            if refused.kind == "origin_refused":
                logger.info("Widget %s refused a request from %s", widget_key.key, request.headers.get("Origin"))
                return refused.response()  # no CORS headers: the refused page cannot read even the refusal
            response = refused.response()
        return _cors(response, request=request, widget_key=widget_key)

    return wrapper


def _identity(request, widget_key: WidgetKey) -> WidgetIdentity:
    identity = widget_identity_resolve(widget_key=widget_key, token=_bearer(request), session_user=request.user)
    if identity.via == "session" and request.method == "POST" and _csrf_rejected(request):
        raise WidgetRefused(403, "csrf", "The panel's security token is missing or stale; close and reopen the chat.")
    return identity


def _csrf_rejected(request) -> bool:
    check = CsrfViewMiddleware(lambda r: HttpResponse())
    check.process_request(request)
    return check.process_view(request, None, (), {}) is not None


def _panel_url(request, widget_key: WidgetKey) -> str:
    return request.build_absolute_uri(reverse("chat:widget-panel") + "?" + urlencode({"key": widget_key.key}))


@widget_endpoint
def widget_config(request, widget_key: WidgetKey):
    """What widget.js needs before it adds the launcher; a page on an unlisted origin gets no answer it can read."""
    if request.method != "GET":
        raise WidgetRefused(405, "method", "Use GET.")
    return JsonResponse({"name": widget_key.name, "panel_url": _panel_url(request, widget_key), "anonymous": widget_key.allow_anonymous})


@widget_endpoint
def widget_me(request, widget_key: WidgetKey):
    """Who the panel is asking as (checks a token before the first question)."""
    if request.method != "GET":
        raise WidgetRefused(405, "method", "Use GET.")
    identity = _identity(request, widget_key)
    return JsonResponse({"via": identity.via, "name": identity.name})


@widget_endpoint
def widget_ask(request, widget_key: WidgetKey):
    """A question from the widget, answered as server-sent events: the same events as the chat page."""
    if request.method != "POST":
        raise WidgetRefused(405, "method", "Questions are sent with POST.")
    identity = _identity(request, widget_key)
    payload = _payload(request)
    question = str(payload.get("question") or "").strip()
    if not question:
        raise WidgetRefused(400, "empty", "Type a question first.")
    if len(question) > MAX_QUESTION_CHARS:
        raise WidgetRefused(400, "too_long", f"Questions are limited to {MAX_QUESTION_CHARS} characters.")
    if identity.via == "anonymous":
        # Nobody to keep a conversation for: one question at a time, over public collections only.
        audit_question_asked(user=None, text=question, target=f"widget key {widget_key.name}")
        return sse_response(request, services.answer_stream(user=identity.user, text=question))
    conversation_id = _int_or_none(payload.get("conversation"))
    try:
        conversation = (
            services.conversation_get(user=identity.user, conversation_id=conversation_id) if conversation_id
            else services.conversation_create(user=identity.user, title=_title(question))
        )
    except services.ConversationNotFound:
        raise WidgetRefused(404, "no_conversation", "That conversation does not exist.") from None
    return sse_response(request, services.answer_question(user=identity.user, conversation=conversation, text=question))


@xframe_options_exempt
def widget_panel(request):
    """The panel inside the iframe. Only the key's origins may frame it (frame-ancestors); the full CSP is set here,
    so the site-wide CSP middleware leaves this response alone."""
    try:
        widget_key = widget_key_get(key=request.GET.get("key", ""))
    except WidgetRefused as refused:
        response = render(request, "widget/refused.html", {"message": refused.message}, status=refused.status)
        return _panel_headers(response, origins=[])
    user = request.user if request.user.is_authenticated and request.user.is_active else None
    config = {
        "key": widget_key.key,
        "name": widget_key.name,
        "origins": widget_key.allowed_origins,
        "anonymous": widget_key.allow_anonymous,
        "user": user.get_username() if user else "",
        "csrf": get_token(request),
        "ask_url": reverse("chat:widget-ask") + "?" + urlencode({"key": widget_key.key}),
        "me_url": reverse("chat:widget-me") + "?" + urlencode({"key": widget_key.key}),
        "login_url": request.build_absolute_uri(reverse("login") + "?" + urlencode({"next": reverse("chat:widget-signed-in")})),
    }
    response = render(request, "widget/panel.html", {"widget_key": widget_key, "config": config})
    return _panel_headers(response, origins=widget_key.allowed_origins)


def _panel_headers(response: HttpResponse, *, origins: list[str]) -> HttpResponse:
    ancestors = " ".join(origins) if origins else "'none'"
    response["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        f"font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors {ancestors}"
    )
    response["Cache-Control"] = "no-store"  # it carries a CSRF token and the signed-in name
    return response


def widget_signed_in(request):
    """Where the sign-in link of the panel lands (in a tab of its own): the panel can be used now."""
    return render(request, "widget/signed_in.html")


@cache
def _script_bytes() -> bytes:
    path = finders.find("widget.js")
    with open(path, "rb") as script:
        return script.read()


def widget_script(request):
    """/widget.js at the site root: the one line intranet pages include."""
    response = HttpResponse(_script_bytes(), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=300"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"  # loaded by pages on other origins
    return response
