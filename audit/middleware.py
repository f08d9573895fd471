"""Tells audit.services where the current request comes from (address and surface)."""

from __future__ import annotations

from . import services


class AuditOriginMiddleware:
    """Sets the audit origin for the code a request runs.

    A streamed response keeps it after the view returns: the chat page's server-sent events record their question
    while the response is being sent, after this middleware is done. Each request sets its own origin first, so a
    value left behind is replaced by the next request on that thread.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = services.origin_set(services.origin_of(request))
        response = self.get_response(request)
        if not getattr(response, "streaming", False):
            services.origin_reset(token)
        return response
