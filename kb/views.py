import posixpath

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import connection
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from ingestion.services import document_retry

from . import selectors, services, vectorstore
from .models import Chunk, Collection, Document, UploadBatch


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


@staff_member_required
@require_GET
def documents_page(request):
    collection_id = _int_or_none(request.GET.get("collection"))
    batch_id = _int_or_none(request.GET.get("batch"))
    status = request.GET.get("status", "")
    documents = selectors.documents_list(user=request.user, collection_id=collection_id, status=status, batch_id=batch_id)
    page = Paginator(documents, 100).get_page(request.GET.get("page"))
    batch = UploadBatch.objects.filter(pk=batch_id).first() if batch_id else None
    return render(
        request,
        "kb/documents.html",
        {
            "page": page,
            "collections": Collection.objects.filter(pk__in=selectors.collections_readable(user=request.user)),
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
    documents = selectors.documents_list(user=request.user).filter(pk__in=ids)
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
    document = _readable_document(request.user, pk)
    if document_retry(document=document):
        messages.success(request, f"“{document.title}” is queued again.")
    else:
        messages.error(request, f"“{document.title}” is not a failed document with a file, so it was not retried.")
    return redirect(request.POST.get("next") or "kb:documents")


@staff_member_required
@require_POST
def document_delete_view(request, pk: int):
    document = _readable_document(request.user, pk)
    services.document_delete(document=document)
    messages.success(request, f"“{document.title}” was deleted with its passages and file.")
    return redirect(request.POST.get("next") or "kb:documents")


# --- Passages and original files, for anyone who may read their collection -------------------------------------

# How much of the document the passage page shows around the passage: whole paragraphs, up to this many each side.
CONTEXT_PARAGRAPHS = 3
CONTEXT_MAX_CHARS = 2500
PARAGRAPH_BREAK = "\n\n"


def _readable_document(user, pk: int) -> Document:
    """The document, if `user` may read its collection; otherwise a 404 that does not reveal it exists."""
    return get_object_or_404(
        Document.objects.select_related("collection"), pk=pk, collection_id__in=selectors.collections_readable(user=user)
    )


def passage_context(text: str, start: int, end: int) -> tuple[str, str, str]:
    """(before, passage, after): the passage and a few whole paragraphs each side, cut at CONTEXT_MAX_CHARS."""
    before_start = start
    for _ in range(CONTEXT_PARAGRAPHS + 1):  # +1: the passage's own paragraph may start before the passage
        found = text.rfind(PARAGRAPH_BREAK, 0, max(before_start - 1, 0))
        if found == -1:
            before_start = 0
            break
        before_start = found + len(PARAGRAPH_BREAK)
    after_end = end
    for _ in range(CONTEXT_PARAGRAPHS + 1):
        found = text.find(PARAGRAPH_BREAK, after_end + 1)
        if found == -1:
            after_end = len(text)
            break
        after_end = found
    before_start = max(before_start, start - CONTEXT_MAX_CHARS)
    after_end = min(after_end, end + CONTEXT_MAX_CHARS)
    return text[before_start:start], text[start:end], text[end:after_end]


def _passage_span(chunk: Chunk, last: Chunk | None) -> tuple[int, int, str]:
    """Where the passage lies in the extracted text, and its text; a merged passage runs to its last chunk."""
    end_chunk = last if last is not None and last.ordinal >= chunk.ordinal else chunk
    document_text = chunk.document.extracted_text
    start, end = chunk.char_start, end_chunk.char_end
    if not (0 <= start < end <= len(document_text)):
        return 0, 0, chunk.text  # offsets from another version of the text: show the chunk alone
    return start, end, document_text[start:end]


@login_required
@require_GET
def passage_page(request, chunk_id: int):
    """A cited passage in its context: highlighted within the paragraphs around it, with a link to the original."""
    chunk = get_object_or_404(
        Chunk.objects.select_related("document__collection"),
        pk=chunk_id,
        document__collection_id__in=selectors.collections_readable(user=request.user),
    )
    document = chunk.document
    end_id = _int_or_none(request.GET.get("end"))
    last = Chunk.objects.filter(pk=end_id, document_id=document.pk).first() if end_id else None
    start, end, passage = _passage_span(chunk, last)
    before, _, after = passage_context(document.extracted_text, start, end) if end else ("", "", "")
    text_length = len(document.extracted_text)
    page = chunk.page_start
    file_url = reverse("kb:document_file", args=[document.pk]) if document.file else ""
    if file_url and document.kind == "pdf" and page:
        file_url += f"#page={page}"
    return render(
        request,
        "kb/passage.html",
        {
            "document": document,
            "chunk": chunk,
            "page": page,
            "before": before,
            "passage": passage,
            "after": after,
            "more_before": bool(end) and start - len(before) > 0,
            "more_after": bool(end) and end + len(after) < text_length,
            "file_url": file_url,
        },
    )


# Types a browser may show itself. Anything else is downloaded: an uploaded HTML or SVG file opened inline would run
# its scripts with the portal's origin (stored XSS).
INLINE_CONTENT_TYPES = {"pdf": "application/pdf"}
CONTENT_TYPES = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv",
    "markdown": "text/markdown",
    "text": "text/plain",
    "html": "application/octet-stream",  # downloaded as bytes; never rendered by the browser
}


@login_required
@require_GET
def document_file_view(request, pk: int):
    """The original file as uploaded: PDFs open in the browser (at a page, with #page=N); everything else downloads."""
    document = _readable_document(request.user, pk)
    if not document.file:
        raise Http404("This document has no stored file.")
    try:
        handle = document.file.open("rb")
    except FileNotFoundError as error:
        raise Http404("The stored file is missing.") from error
    inline = document.kind in INLINE_CONTENT_TYPES
    content_type = (
        INLINE_CONTENT_TYPES.get(document.kind)
        or CONTENT_TYPES.get(document.kind)
        # Not the file name's type: a failed "x.js" served as text/javascript would be a script of the portal's origin.
        or "application/octet-stream"
    )
    if content_type.startswith("text/"):
        content_type += "; charset=utf-8"
    if "html" in content_type or "svg" in content_type or "xml" in content_type:
        content_type = "application/octet-stream"
    response = FileResponse(
        handle, as_attachment=not inline, filename=posixpath.basename(document.source_path) or document.title,
        content_type=content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    if not inline:
        response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return response


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
