"""The JSON API's collections (for everyone, those they may read) and documents (staff only): thin edges over the
services the documents and upload pages use.

Staff see and manage documents only in collections they may read themselves, so a group-only collection stays
invisible to an administrator outside its groups (a superuser reads everything).
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Count, Q
from django.http import Http404, HttpResponse
from ninja import Field, File, Form, Query, Router, Schema, Status
from ninja.errors import HttpError
from ninja.files import UploadedFile

from ingestion.services import document_retry, documents_upload, max_upload_bytes
from ingestion.views import incoming_file, review_fields

from . import selectors, services
from .models import Collection, Document, UploadBatch

router = Router(tags=["Collections and documents"])

STAFF_ONLY = "Only administrators (staff) may manage documents."
DOCUMENT_NOT_FOUND = "Document not found."


class CollectionOut(Schema):
    id: int
    name: str
    slug: str
    description: str
    documents: int = Field(alias="indexed_documents", description="Indexed documents, the ones answers are drawn from.")


class DocumentOut(Schema):
    id: int
    title: str
    source_path: str
    collection: str
    kind: str
    status: Document.Status
    status_label: str
    progress: float = Field(description="0..1 within the current stage sequence; 1 once indexed.")
    error: str = Field(description="Why the document failed, in words an admin can act on.")
    version: int
    chunks: int
    pages: int | None
    size_bytes: int
    updated_at: str


class DocumentPage(Schema):
    count: int
    items: list[DocumentOut]


class UploadOut(Schema):
    batch_id: int
    queued: list[DocumentOut] = Field(description="New documents and new versions, waiting for a worker.")
    unchanged: list[DocumentOut] = Field(description="Same bytes as a document already in the collection.")
    rejected: list[DocumentOut] = Field(description="Files Lantern cannot take, each with its reason in `error`.")


class BatchOut(Schema):
    id: int
    total: int
    indexed: int
    failed: int
    pending: int
    fraction: float
    eta_seconds: float | None
    done: bool


# --- Collections ---------------------------------------------------------------------------------------------------


@router.get("/collections", response=list[CollectionOut], summary="The collections you may read")
def collections(request):
    indexed = Count("documents", filter=Q(documents__status=Document.Status.INDEXED))
    readable = Collection.objects.filter(pk__in=selectors.collections_readable(user=request.auth))
    return list(readable.annotate(indexed_documents=indexed).order_by("name"))


# --- Documents (staff) ---------------------------------------------------------------------------------------------


def _staff(request):
    user = request.auth
    if not (user.is_active and user.is_staff):
        raise HttpError(403, STAFF_ONLY)
    return user


def _readable_collection(user, collection_id: int) -> Collection:
    found = Collection.objects.filter(pk=collection_id, pk__in=selectors.collections_readable(user=user)).first()
    if found is None:
        raise Http404(f"No collection with id {collection_id} among those you may read.")
    return found


def _readable_document(user, document_id: int) -> Document:
    """Someone else's collection's document is as absent as one that never existed."""
    found = selectors.documents_readable(user=user).select_related("collection").filter(pk=document_id).first()
    if found is None:
        raise Http404(DOCUMENT_NOT_FOUND)
    return found


@router.get("/documents", response=DocumentPage, summary="Documents with their status and progress (staff)")
def documents(
    request,
    collection_id: int | None = None,
    status: Document.Status | None = None,
    batch_id: int | None = None,
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0),
):
    user = _staff(request)
    found = selectors.documents_list(collection_id=collection_id, status=status or "", batch_id=batch_id).filter(
        collection_id__in=selectors.collections_readable(user=user)
    )
    return {"count": found.count(), "items": [selectors.document_status_payload(d) for d in found[offset : offset + limit]]}


@router.get("/documents/{document_id}", response=DocumentOut, summary="One document's status and progress (staff)")
def document(request, document_id: int):
    return selectors.document_status_payload(_readable_document(_staff(request), document_id))


@router.post("/documents", response={201: UploadOut}, summary="Upload files into a collection (staff)")
def upload(
    request,
    collection_id: int = Form(...),
    files: list[UploadedFile] = File(...),
    owner: str = Form("", description="Username of who answers for the content (content health)."),
    review_by: str = Form("", description="When the content should next be checked, YYYY-MM-DD."),
):
    """Each file becomes a queued document (or a new version of one); zips are unpacked. A file over the upload limit
    refuses the whole request with 413, and nothing is recorded."""
    user = _staff(request)
    collection = _readable_collection(user, collection_id)
    review, problem = review_fields({"owner": owner, "review_by": review_by})
    if problem:
        raise HttpError(422, problem)
    if too_large := [f.name for f in files if f.size > max_upload_bytes()]:
        raise HttpError(
            413, f"{too_large[0]} is larger than the {settings.MAX_UPLOAD_MB} MB upload limit; nothing was uploaded."
        )
    result = documents_upload(
        collection=collection,
        files=[incoming_file(f) for f in files],
        user=user,
        label=f"{len(files)} file(s) by {user} (API)",
        **review,
    )
    payload = selectors.document_status_payload
    return Status(
        201,
        {
            "batch_id": result.batch.pk,
            "queued": [payload(d) for d in result.queued],
            "unchanged": [payload(d) for d in result.unchanged],
            "rejected": [payload(d) for d in result.rejected],
        },
    )


@router.post(
    "/documents/{document_id}/retry",
    response={200: DocumentOut, 409: dict},
    summary="Queue a failed document again (staff)",
)
def retry(request, document_id: int):
    document = _readable_document(_staff(request), document_id)
    if not document_retry(document=document):
        raise HttpError(409, f"“{document.title}” is not a failed document with a stored file, so it was not retried.")
    document.refresh_from_db()
    return selectors.document_status_payload(document)


@router.delete("/documents/{document_id}", response={204: None}, summary="Delete a document, its passages and file (staff)")
def delete(request, document_id: int):
    services.document_delete(document=_readable_document(_staff(request), document_id))
    return HttpResponse(status=204)


@router.get("/batches/{batch_id}", response=BatchOut, summary="Overall progress of one upload (staff)")
def batch(request, batch_id: int):
    user = _staff(request)
    found = UploadBatch.objects.filter(pk=batch_id, collection_id__in=selectors.collections_readable(user=user)).first()
    if found is None:
        raise Http404("Upload not found.")
    progress = selectors.batch_progress(batch=found)
    return {"id": found.pk, **progress.__dict__, "done": progress.done}
