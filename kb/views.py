from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.paginator import Paginator
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from ingestion.services import document_retry

from . import selectors, services, vectorstore
from .models import Collection, Document, UploadBatch


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


@staff_member_required
@require_GET
def documents_page(request):
    collection_id = _int_or_none(request.GET.get("collection"))
    batch_id = _int_or_none(request.GET.get("batch"))
    status = request.GET.get("status", "")
    documents = selectors.documents_list(collection_id=collection_id, status=status, batch_id=batch_id)
    page = Paginator(documents, 100).get_page(request.GET.get("page"))
    batch = UploadBatch.objects.filter(pk=batch_id).first() if batch_id else None
    return render(
        request,
        "kb/documents.html",
        {
            "page": page,
            "collections": Collection.objects.all(),
            "statuses": Document.Status.choices,
            "filters": {"collection": collection_id, "status": status, "batch": batch_id},
            "batch": batch,
            "batch_progress": selectors.batch_progress(batch=batch) if batch else None,
        },
    )


@staff_member_required
@require_GET
def documents_status(request):
    """Live progress for the documents page: the listed documents and, optionally, one batch."""
    ids = [int(i) for i in request.GET.get("ids", "").split(",") if i.isdigit()][:500]
    documents = selectors.documents_list().filter(pk__in=ids)
    payload = {"documents": [selectors.document_status_payload(d) for d in documents]}
    batch_id = _int_or_none(request.GET.get("batch"))
    if batch_id:
        batch = get_object_or_404(UploadBatch, pk=batch_id)
        progress = selectors.batch_progress(batch=batch)
        payload["batch"] = {**progress.__dict__, "done": progress.done}
    return JsonResponse(payload)


@staff_member_required
@require_POST
def document_retry_view(request, pk: int):
    document = get_object_or_404(Document, pk=pk)
    if document_retry(document=document):
        messages.success(request, f"“{document.title}” is queued again.")
    else:
        messages.error(request, f"“{document.title}” is not a failed document with a file, so it was not retried.")
    return redirect(request.POST.get("next") or "kb:documents")


@staff_member_required
@require_POST
def document_delete_view(request, pk: int):
    document = get_object_or_404(Document, pk=pk)
    services.document_delete(document=document)
    messages.success(request, f"“{document.title}” was deleted with its passages and file.")
    return redirect(request.POST.get("next") or "kb:documents")


@require_GET
def healthz(request):
    """Liveness for compose and load balancers: the database answers; the vector store when it is a server."""
    checks = {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        checks["database"] = "ok"
    if not vectorstore.is_embedded():
        vectorstore.client().get_collections()
        checks["vector_store"] = "ok"
    return JsonResponse({"status": "ok", **checks})
