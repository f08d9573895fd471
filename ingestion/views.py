from datetime import date

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.admin.views.decorators import staff_member_required
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from kb.models import Collection
from kb.services import collection_create

from .services import IncomingFile, documents_upload, max_upload_bytes


# Usernames offered as owners in the upload form (any active username is accepted when typed).
OWNER_CHOICES = 500


def incoming_file(uploaded) -> IncomingFile:
    # The browser sends folder uploads with their relative path as the file name.
    name = uploaded.name
    if uploaded.size > max_upload_bytes():
        return IncomingFile(name=name, data=b"", declared_size=uploaded.size)
    return IncomingFile(name=name, data=uploaded.read())


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def review_fields(data) -> tuple[dict, str]:
    """The optional owner (a username) and review-by date (YYYY-MM-DD) of an upload, or the reason they are wrong."""
    fields: dict = {}
    username = (data.get("owner") or "").strip()
    if username:
        fields["owner"] = get_user_model().objects.filter(username=username, is_active=True).first()
        if fields["owner"] is None:
            return {}, f"No active user is called {username!r}: choose the owner from the list, or leave it empty."
    raw_date = (data.get("review_by") or "").strip()
    if raw_date:
        try:
            fields["review_by"] = date.fromisoformat(raw_date)
        except ValueError:
            return {}, f"Review by: {raw_date!r} is not a date (YYYY-MM-DD)."
    return fields, ""


def _page_context(collections) -> dict:
    owners = get_user_model().objects.filter(is_active=True).order_by("username").values_list("username", flat=True)
    return {"collections": collections, "max_mb": max_upload_bytes() // 2**20, "owners": owners[:OWNER_CHOICES]}


@staff_member_required
def upload_page(request):
    collections = Collection.objects.all()
    if request.method != "POST":
        return render(request, "ingestion/upload.html", _page_context(collections))
    files = request.FILES.getlist("files")
    review, error = review_fields(request.POST)
    new_name = request.POST.get("new_collection", "").strip()
    if not error:
        collection = collection_create(name=new_name) if new_name else Collection.objects.filter(pk=request.POST.get("collection") or 0).first()
        error = "Choose a collection or name a new one." if collection is None else ("Choose at least one file." if not files else "")
    if error:
        if _wants_json(request):
            return JsonResponse({"error": error}, status=400)
        messages.error(request, error)
        return render(request, "ingestion/upload.html", _page_context(collections), status=400)
    result = documents_upload(
        collection=collection, files=[incoming_file(f) for f in files], user=request.user, label=f"{len(files)} file(s) by {request.user}",
        **review,
    )
    url = reverse("kb:documents") + f"?batch={result.batch.pk}"
    summary = f"{len(result.queued)} queued, {len(result.unchanged)} unchanged, {len(result.rejected)} refused."
    if _wants_json(request):
        return JsonResponse({"batch": result.batch.pk, "redirect": url, "summary": summary,
                             "queued": len(result.queued), "unchanged": len(result.unchanged), "rejected": len(result.rejected)})
    messages.success(request, summary)
    return redirect(url)
