"""The Content-Security-Policy every page gets.

Pages load scripts and styles only from the portal itself: no inline <script>, no inline event handlers, no style
attributes. A template that truly needs an inline <script> or <style> marks it with the request's nonce:
`<script nonce="{{ request.csp_nonce }}">`. Because injected HTML cannot carry that nonce, text from documents or the
model that slipped through escaping still could not run.

A response that sets its own policy keeps it (the widget's pages name the origins that may frame them; original
files are served sandboxed). PDFs opened in the browser get none: Chrome's PDF viewer would be blocked by it.
"""

from __future__ import annotations

import secrets

HEADER = "Content-Security-Policy"

POLICY = (
    "default-src 'self'; "
    "script-src 'self' 'nonce-{nonce}'; "
    "style-src 'self' 'nonce-{nonce}'; "
    "img-src 'self' data:; "
    "font-src 'self'; "
    "connect-src 'self'; "
    "object-src 'none'; "
    "base-uri 'self'; "
    "form-action 'self'; "
    "frame-ancestors 'none'"
)


def csp_policy(*, nonce: str) -> str:
    return POLICY.format(nonce=nonce)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.csp_nonce = secrets.token_urlsafe(16)
        response = self.get_response(request)
        if HEADER not in response and not response.get("Content-Type", "").startswith("application/pdf"):
            response[HEADER] = csp_policy(nonce=request.csp_nonce)
        return response
