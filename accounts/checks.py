"""`manage.py check` (and every start) refuses a rate limit setting it cannot read, rather than failing on a request."""

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from .throttling import rate_parse

RATE_SETTINGS = ("API_RATE_LIMIT", "API_TOKEN_RATE_LIMIT", "API_ASK_RATE_LIMIT")


@checks.register()
def rate_limits_readable(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    problems = []
    for name in RATE_SETTINGS:
        try:
            rate_parse(str(getattr(settings, name, "")))
        except ImproperlyConfigured as error:
            problems.append(checks.Error(f"{name}: {error}", id="accounts.E001"))
    return problems
