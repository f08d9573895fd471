"""Optional single sign-on with OpenID Connect (mozilla-django-oidc), configured by environment variables only.

Off unless OIDC_RP_CLIENT_ID is set (portal/settings.py); username and password sign-in stays either way. The
provider's endpoints come from OIDC_OP_ISSUER's discovery document, or from OIDC_OP_*_ENDPOINT one by one.

At each sign-in, the groups claim (OIDC_GROUPS_CLAIM) is mapped to Django groups through OIDC_GROUP_MAP, and the
user's groups are set to exactly the mapped ones among the groups the map names. Groups the map does not name are
left alone: an administrator can still give anyone such a group in the admin, and single sign-on never removes it.

On top of the library's checks (signature against the provider's JWKS, nonce, state, PKCE), the identity token must
be issued for this portal (aud), by the configured issuer (iss), and not be expired; a token that fails is refused
with a message saying why, on the sign-in page.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging

import jwt
import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect
from django.urls import path
from django.views.generic import View
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from audit.models import AuditEvent
from audit.services import audit_record

logger = logging.getLogger(__name__)

DISCOVERY_KEYS = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}


class OIDCLoginRefused(Exception):
    """A sign-in through the provider that must not succeed; the message is shown to the person signing in.

    Not a SuspiciousOperation on purpose: the library swallows those into a silent failure."""


# --- Configuration -------------------------------------------------------------------------------------------------


def sso_enabled() -> bool:
    return bool(settings.OIDC_ENABLED)


def provider_name() -> str:
    return settings.OIDC_PROVIDER_NAME


@functools.cache
def _discovery(issuer: str) -> dict:
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    response = requests.get(url, timeout=settings.OIDC_TIMEOUT)
    response.raise_for_status()
    document = response.json()
    if document.get("issuer", "").rstrip("/") != issuer.rstrip("/"):
        raise ImproperlyConfigured(f"{url} names the issuer {document.get('issuer')!r}, not OIDC_OP_ISSUER {issuer!r}.")
    return document


def provider_endpoint(name: str) -> str:
    """An endpoint of the provider: the OIDC_OP_* setting if set, otherwise the issuer's discovery document."""
    explicit = getattr(settings, name, "")
    if explicit:
        return explicit
    if settings.OIDC_OP_ISSUER:
        endpoint = _discovery(settings.OIDC_OP_ISSUER).get(DISCOVERY_KEYS[name], "")
        if endpoint:
            return endpoint
    raise ImproperlyConfigured(f"Single sign-on needs OIDC_OP_ISSUER, or {name} set.")


def group_map() -> dict[str, list[str]]:
    """OIDC_GROUP_MAP as {claim value: [Django group names]}; {} when unset (single sign-on then manages no group)."""
    raw = settings.OIDC_GROUP_MAP
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError as error:
        raise ImproperlyConfigured(f"OIDC_GROUP_MAP is not valid JSON ({error}).") from error
    if not isinstance(parsed, dict):
        raise ImproperlyConfigured('OIDC_GROUP_MAP must be a JSON object, e.g. {"hr-staff": "HR"}.')
    mapping: dict[str, list[str]] = {}
    for value, groups in parsed.items():
        names = [groups] if isinstance(groups, str) else groups
        if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
            raise ImproperlyConfigured(f"OIDC_GROUP_MAP[{value!r}] must be a group name or a list of group names.")
        mapping[str(value)] = [n.strip() for n in names]
    return mapping


# --- Groups --------------------------------------------------------------------------------------------------------


def _claim_values(claims: dict) -> list[str]:
    value = claims.get(settings.OIDC_GROUPS_CLAIM)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if isinstance(value, list) else []


def user_groups_sync(*, user, claims: dict) -> set[str]:
    """Give `user` exactly the groups their claim maps to, among the groups OIDC_GROUP_MAP names; returns them.

    Groups the map does not name are not touched. A claim that is missing counts as no group, so someone removed
    from every group at the provider loses the mapped groups at their next sign-in. Missing groups are created.
    """
    mapping = group_map()
    managed = {name for names in mapping.values() for name in names}
    wanted = {name for value in _claim_values(claims) for name in mapping.get(value, [])}
    with transaction.atomic():
        for name in wanted:
            Group.objects.get_or_create(name=name)
        user.groups.remove(*user.groups.filter(name__in=managed - wanted))
        user.groups.add(*Group.objects.filter(name__in=wanted))
    return wanted


# --- The authentication backend -------------------------------------------------------------------------------------


def _setting_property(name: str):
    return property(lambda self: getattr(settings, name))


class OIDCBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend with lazy endpoints, audience/issuer/expiry checks and group mapping."""

    def __init__(self, *args, **kwargs):
        # Django builds a backend for every request's session lookup: read nothing, reach no provider here.
        self.UserModel = get_user_model()

    OIDC_RP_CLIENT_ID = _setting_property("OIDC_RP_CLIENT_ID")
    OIDC_RP_CLIENT_SECRET = _setting_property("OIDC_RP_CLIENT_SECRET")
    OIDC_RP_SIGN_ALGO = _setting_property("OIDC_RP_SIGN_ALGO")
    OIDC_RP_IDP_SIGN_KEY = None
    OIDC_OP_TOKEN_ENDPOINT = property(lambda self: provider_endpoint("OIDC_OP_TOKEN_ENDPOINT"))
    OIDC_OP_USER_ENDPOINT = property(lambda self: provider_endpoint("OIDC_OP_USER_ENDPOINT"))
    OIDC_OP_JWKS_ENDPOINT = property(lambda self: provider_endpoint("OIDC_OP_JWKS_ENDPOINT"))

    def authenticate(self, request, **kwargs):
        if not sso_enabled():
            return None
        return super().authenticate(request, **kwargs)

    def retrieve_matching_jwk(self, token):
        try:
            return super().retrieve_matching_jwk(token)
        except (SuspiciousOperation, KeyError) as error:
            raise OIDCLoginRefused("the identity token was signed with a key the provider does not publish.") from error

    def _verify_jws(self, payload, key):
        """The signature, then this portal as audience, the configured issuer, and the token's lifetime."""
        try:
            algorithm = jwt.get_unverified_header(payload).get("alg")
        except jwt.InvalidTokenError as error:
            raise OIDCLoginRefused("the provider sent an identity token that cannot be read.") from error
        if algorithm != self.OIDC_RP_SIGN_ALGO:
            raise OIDCLoginRefused(f"the identity token is signed with {algorithm}, not {self.OIDC_RP_SIGN_ALGO}.")
        try:
            return jwt.decode(
                payload, key, algorithms=[self.OIDC_RP_SIGN_ALGO], audience=self.OIDC_RP_CLIENT_ID,
                issuer=settings.OIDC_OP_ISSUER or None, leeway=settings.OIDC_LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "aud", "sub"]},
            )
        except jwt.InvalidSignatureError as error:
            raise OIDCLoginRefused("the identity token's signature does not match the provider's keys.") from error
        except jwt.ExpiredSignatureError as error:
            raise OIDCLoginRefused("the identity token has expired. Check the server's clock, then try again.") from error
        except jwt.InvalidAudienceError as error:
            raise OIDCLoginRefused("the identity token was issued for another application (wrong audience).") from error
        except jwt.InvalidIssuerError as error:
            raise OIDCLoginRefused("the identity token comes from another issuer than the one configured.") from error
        except jwt.InvalidTokenError as error:
            raise OIDCLoginRefused(f"the identity token is not valid ({error}).") from error

    def verify_token(self, token, **kwargs):
        try:
            return super().verify_token(token, **kwargs)
        except SuspiciousOperation as error:  # the nonce, from the library's own checks
            raise OIDCLoginRefused(f"the identity token failed a check ({error}).") from error

    def verify_claims(self, claims) -> bool:
        """Accounts are matched by email, so a sign-in needs one the provider has not marked unverified (providers
        that never send email_verified, such as Entra ID, are trusted for it)."""
        if not claims.get("email"):
            raise OIDCLoginRefused("the provider did not send an email address (ask for the email scope).")
        if claims.get("email_verified") is False:
            raise OIDCLoginRefused("the provider has not verified this email address.")
        return True

    @staticmethod
    def _usernames(claims) -> list[str]:
        """Names a new account may get: the provider's username claim (or the email), then the same with a suffix
        derived from the provider's subject, for when a local account already has the name."""
        base = str(claims.get(settings.OIDC_USERNAME_CLAIM) or claims["email"])[:140]
        suffix = hashlib.sha256(f"{settings.OIDC_OP_ISSUER}|{claims.get('sub', '')}".encode()).hexdigest()[:8]
        return [base, f"{base}-{suffix}"]

    def get_username(self, claims) -> str:
        names = self._usernames(claims)
        taken = set(self.UserModel.objects.filter(username__in=names).values_list("username", flat=True))
        free = [name for name in names if name not in taken]
        if not free:
            raise OIDCLoginRefused("an account with this name exists already; an administrator must rename one.")
        return free[0]

    def create_user(self, claims):
        user = super().create_user(claims)
        return self.update_user(user, claims)

    def update_user(self, user, claims):
        user.email = claims.get("email") or user.email
        user.first_name = str(claims.get("given_name") or user.first_name)[:150]
        user.last_name = str(claims.get("family_name") or user.last_name)[:150]
        user.save(update_fields=["email", "first_name", "last_name"])
        user_groups_sync(user=user, claims=claims)
        return user

    def get_userinfo(self, access_token, id_token, payload):
        """The userinfo claims, with the identity token's claims as fallback (some providers put groups only there)."""
        return {**payload, **super().get_userinfo(access_token, id_token, payload)}

    def get_or_create_user(self, access_token, id_token, payload):
        try:
            with transaction.atomic():  # an account is created with its groups or not at all
                return super().get_or_create_user(access_token, id_token, payload)
        except SuspiciousOperation as error:  # the library's "Multiple users returned"
            raise OIDCLoginRefused("two accounts here share that email address; an administrator must merge them.") from error


# --- Views -----------------------------------------------------------------------------------------------------------


def _refused(request, reason: str):
    audit_record(action=AuditEvent.Action.LOGIN_FAILED, request=request, detail={"sso": reason})
    messages.error(request, f"Sign-in with {provider_name()} was refused: {reason}")
    return redirect(settings.LOGIN_URL)


class OIDCAuthenticateView(OIDCAuthenticationRequestView):
    """Sends the browser to the provider."""

    def __init__(self, **kwargs):
        View.__init__(self, **kwargs)  # the library's reads the endpoint here; it is resolved on use instead

    OIDC_OP_AUTH_ENDPOINT = property(lambda self: provider_endpoint("OIDC_OP_AUTHORIZATION_ENDPOINT"))
    OIDC_RP_CLIENT_ID = _setting_property("OIDC_RP_CLIENT_ID")

    def get(self, request):
        if not sso_enabled():
            raise Http404("Single sign-on is not configured.")
        try:
            return super().get(request)
        except (requests.RequestException, ImproperlyConfigured) as error:
            logger.warning("Single sign-on could not start: %s", error)
            return _refused(request, "the provider could not be reached. Try again in a moment.")


class OIDCCallbackView(OIDCAuthenticationCallbackView):
    """Where the provider sends the browser back with a code."""

    def get(self, request):
        if not sso_enabled():
            raise Http404("Single sign-on is not configured.")
        try:
            return super().get(request)
        except OIDCLoginRefused as refusal:
            logger.warning("Single sign-on refused: %s", refusal)
            return _refused(request, str(refusal))
        except SuspiciousOperation as error:
            logger.warning("Single sign-on callback refused: %s", error)
            return _refused(request, "this sign-in link is stale or was already used. Start again.")
        except requests.RequestException as error:
            logger.warning("Single sign-on: the provider failed: %s", error)
            return _refused(request, "the provider could not be reached or refused the code. Try again.")
        except ImproperlyConfigured as error:
            logger.error("Single sign-on is misconfigured: %s", error)
            return _refused(request, f"single sign-on is misconfigured ({error}). Tell an administrator.")

    def login_failure(self):
        messages.error(
            self.request,
            f"Sign-in with {provider_name()} did not complete. Try again, or sign in with a username and password.",
        )
        return redirect(settings.LOGIN_URL)


def sso_context(request) -> dict:
    """For the sign-in page's "Sign in with ..." button (a context processor)."""
    return {"sso_enabled": sso_enabled(), "sso_provider_name": provider_name()}


urlpatterns = [
    path("authenticate/", OIDCAuthenticateView.as_view(), name="oidc_authentication_init"),
    path("callback/", OIDCCallbackView.as_view(), name="oidc_authentication_callback"),
]
