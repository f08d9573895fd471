from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from kb.models import Collection
from kb.services import collection_create

from .services import IncomingFile, documents_upload, max_upload_bytes


def incoming_file(uploaded) -> IncomingFile:
    # The browser sends folder uploads with their relative path as the file name.
    name = uploaded.name
    if uploaded.size > max_upload_bytes():
        return IncomingFile(name=name, data=b"", declared_size=uploaded.size)
    return IncomingFile(name=name, data=uploaded.read())


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@staff_member_required
def upload_page(request):
    collections = Collection.objects.all()
    if request.method != "POST":
        return render(request, "ingestion/upload.html", {"collections": collections, "max_mb": max_upload_bytes() // 2**20})
    files = request.FILES.getlist("files")
    new_name = request.POST.get("new_collection", "").strip()
    collection = collection_create(name=new_name) if new_name else Collection.objects.filter(pk=request.POST.get("collection") or 0).first()
    error = "Choose a collection or name a new one." if collection is None else ("Choose at least one file." if not files else "")
    if error:
        if _wants_json(request):
            return JsonResponse({"error": error}, status=400)
        messages.error(request, error)
        return render(request, "ingestion/upload.html", {"collections": collections, "max_mb": max_upload_bytes() // 2**20}, status=400)
    result = documents_upload(
        collection=collection, files=[incoming_file(f) for f in files], user=request.user, label=f"{len(files)} file(s) by {request.user}"
    )
    url = reverse("kb:documents") + f"?batch={result.batch.pk}"
    summary = f"{len(result.queued)} queued, {len(result.unchanged)} unchanged, {len(result.rejected)} refused."
    if _wants_json(request):
        return JsonResponse({"batch": result.batch.pk, "redirect": url, "summary": summary,
                             "queued": len(result.queued), "unchanged": len(result.unchanged), "rejected": len(result.rejected)})
    messages.success(request, summary)
    return redirect(url)
