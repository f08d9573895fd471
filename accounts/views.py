"""The API tokens page: a signed-in user creates, lists and revokes their own tokens."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from . import services


@login_required
@require_http_methods(["GET", "POST"])
def tokens_page(request):
    """GET lists the user's tokens; POST creates one and shows its secret on this response only (never stored)."""
    context = {"tokens": services.api_tokens_list(user=request.user), "max_name": services.MAX_NAME_CHARS}
    if request.method != "POST":
        return render(request, "accounts/tokens.html", context)
    try:
        token, secret = services.api_token_create(user=request.user, name=request.POST.get("name", ""))
    except ValueError as error:
        return render(request, "accounts/tokens.html", {**context, "error": str(error)}, status=400)
    response = render(request, "accounts/tokens.html", {**context, "created": token, "secret": secret}, status=201)
    response["Cache-Control"] = "no-store"  # the secret must not linger in a cache
    return response


@login_required
@require_POST
def token_revoke(request, token_id: int):
    try:
        token = services.api_token_revoke(user=request.user, token_id=token_id)
    except services.ApiTokenNotFound:
        raise Http404("No such token.") from None
    messages.success(request, f"The token “{token.name}” ({token.prefix}…) is revoked; scripts using it are refused from now on.")
    return redirect("accounts:tokens")
