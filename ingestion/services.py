"""How documents get in: uploads become queued Document rows whose processing is enqueued after commit.

Every entry point (upload page, admin, `manage.py ingest`, evaluate, API) calls `documents_upload`.
"""

from __future__ import annotations

import hashlib
import io
import logging
import posixpath
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import PurePosixPath

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import audit_document_retried
from kb.models import Collection, Document, UploadBatch

from .detection import detect_kind
from .types import IngestionError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IncomingFile:
    name: str  # as uploaded: a file name, or a path relative to an ingested folder or inside a zip
    data: bytes
    title: str = ""  # an explicit title wins over the one found in the file
    declared_size: int = 0  # set instead of data when the upload is too large to be read at all


@dataclass
class UploadResult:
    batch: UploadBatch
    queued: list[Document] = field(default_factory=list)
    unchanged: list[Document] = field(default_factory=list)
    rejected: list[Document] = field(default_factory=list)

    @property
    def documents(self) -> list[Document]:
        return self.queued + self.unchanged + self.rejected


def max_upload_bytes() -> int:
    return settings.MAX_UPLOAD_MB * 1024 * 1024


def clean_source_path(name: str) -> str:
    """A relative POSIX path without traversal; ValueError for names that try to leave their folder."""
    path = name.replace("\\", "/")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        raise ValueError("absolute path")
    parts = PurePosixPath(posixpath.normpath(path)).parts
    if not parts or parts[0] in ("..", ".") or ".." in parts:
        raise ValueError("path traversal")
    return "/".join(parts)


def title_from_name(name: str) -> str:
    stem = PurePosixPath(name).stem
    return stem.replace("_", " ").replace("-", " ").strip() or name


def documents_upload(
    *,
    collection: Collection,
    files: Iterable[IncomingFile],
    user=None,
    label: str = "",
    batch: UploadBatch | None = None,
    owner=None,
    review_by: date | None = None,
) -> UploadResult:
    """Record each file as a queued document (or a new version of one) and enqueue processing after commit.

    Pass `batch` to add to an upload already under way (large folders are recorded in several transactions).

    Same bytes as a document already in the collection: nothing is re-processed. Files Lantern cannot take
    (too large, unknown type, unsafe zip) become failed documents with a reason, and the others go on.

    `owner` and `review_by`, when given, are set on every document the upload queued or found unchanged (content
    health lists overdue documents to their owners); left out, the documents keep the ones they had.
    """
    with transaction.atomic():
        batch = batch or UploadBatch.objects.create(collection=collection, created_by=user, label=label[:300])
        result = UploadResult(batch=batch)
        for incoming in _expand(files):
            _record(incoming, collection=collection, batch=batch, user=user, result=result)
        _set_review(result.queued + result.unchanged, owner=owner, review_by=review_by)
        ids = [d.pk for d in result.queued]
        transaction.on_commit(lambda: documents_enqueue(document_ids=ids))
    return result


def _set_review(documents: list[Document], *, owner, review_by: date | None) -> None:
    fields = {name: value for name, value in (("owner", owner), ("review_by", review_by)) if value is not None}
    if not fields or not documents:
        return
    Document.objects.filter(pk__in=[d.pk for d in documents]).update(**fields)
    for document in documents:
        for name, value in fields.items():
            setattr(document, name, value)


@dataclass(frozen=True)
class _Refused:
    name: str
    reason: str
    data: bytes = b""


def _expand(files: Iterable[IncomingFile]) -> Iterator[IncomingFile | _Refused]:
    for incoming in files:
        if max(len(incoming.data), incoming.declared_size) > max_upload_bytes():
            yield _Refused(incoming.name, f"{incoming.name} is larger than the {settings.MAX_UPLOAD_MB} MB limit.")
            continue
        try:
            kind = detect_kind(incoming.data, filename=incoming.name) if incoming.data else None
        except IngestionError:
            kind = None  # the pipeline reports the precise reason
        if kind == "zip":
            yield from _zip_members(incoming)
        else:
            yield incoming


def _zip_members(archive: IncomingFile) -> Iterator[IncomingFile | _Refused]:
    try:
        members = [m for m in zipfile.ZipFile(io.BytesIO(archive.data)).infolist() if not m.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        yield _Refused(archive.name, f"{archive.name} is not a readable zip file ({error}).")
        return
    problem = _zip_bomb_reason(archive, members)
    if problem:
        yield _Refused(archive.name, problem)
        return
    with zipfile.ZipFile(io.BytesIO(archive.data)) as zf:
        for member in members:
            if _is_junk(member.filename):
                continue
            try:
                name = clean_source_path(member.filename)
            except ValueError:
                yield _Refused(
                    f"{archive.name}: {member.filename}",
                    f"{member.filename} in {archive.name} has an unsafe path (it points outside the archive); skipped.",
                )
                continue
            data = _read_capped(zf, member)
            if data is None:
                yield _Refused(name, f"{name} in {archive.name} is larger than the {settings.MAX_UPLOAD_MB} MB limit.")
                continue
            yield IncomingFile(name=name, data=data)


def _is_junk(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return any(p == "__MACOSX" or p.startswith("._") or p == ".DS_Store" for p in parts)


def _zip_bomb_reason(archive: IncomingFile, members: list[zipfile.ZipInfo]) -> str:
    if len(members) > settings.ZIP_MAX_FILES:
        return f"{archive.name} holds {len(members)} files; the limit is {settings.ZIP_MAX_FILES}. Split it."
    declared = sum(m.file_size for m in members)
    if declared > settings.ZIP_MAX_TOTAL_MB * 1024 * 1024:
        return (
            f"{archive.name} would unpack to {declared // (1024 * 1024)} MB, over the {settings.ZIP_MAX_TOTAL_MB} MB "
            "limit (a zip bomb?). Split it into smaller archives."
        )
    for m in members:
        if m.compress_size and m.file_size / m.compress_size > settings.ZIP_MAX_RATIO and m.file_size > 1024 * 1024:
            return f"{archive.name} looks like a zip bomb ({m.filename} expands {m.file_size // m.compress_size}x); refused."
    return ""


def _read_capped(zf: zipfile.ZipFile, member: zipfile.ZipInfo) -> bytes | None:
    """Read at most the upload limit; the sizes a zip declares can lie, so they are not trusted."""
    limit = max_upload_bytes()
    with zf.open(member) as handle:
        data = handle.read(limit + 1)
    return None if len(data) > limit else data


def _record(item: IncomingFile | _Refused, *, collection: Collection, batch: UploadBatch, user, result: UploadResult) -> None:
    if isinstance(item, _Refused):
        result.rejected.append(_refused_document(item, collection=collection, batch=batch, user=user))
        return
    try:
        source_path = clean_source_path(item.name)
    except ValueError:
        result.rejected.append(
            _refused_document(_Refused(item.name, f"{item.name} has an unsafe file name."), collection=collection, batch=batch, user=user)
        )
        return
    sha = hashlib.sha256(item.data).hexdigest()
    same_bytes = collection.documents.filter(sha256=sha).exclude(status=Document.Status.FAILED).first()
    if same_bytes is not None:
        result.unchanged.append(same_bytes)
        return
    existing = collection.documents.filter(source_path=source_path).first()
    document = existing or Document(collection=collection, source_path=source_path)
    if existing is not None and existing.sha256 != sha:
        document.version += 1
    _reset_for_processing(document, item=item, sha=sha, batch=batch, user=user)
    result.queued.append(document)


def _reset_for_processing(document: Document, *, item: IncomingFile, sha: str, batch: UploadBatch, user) -> None:
    old_file = document.file.name if document.pk and document.file else ""
    document.title = item.title or (document.title if document.pk else title_from_name(item.name))
    document.sha256, document.size_bytes, document.batch, document.uploaded_by = sha, len(item.data), batch, user
    document.status, document.progress, document.error, document.claim_token = Document.Status.QUEUED, 0.0, "", ""
    document.save()
    document.file.save(f"{document.collection_id}/{document.pk}/v{document.version}/{PurePosixPath(item.name).name}", ContentFile(item.data), save=True)
    if old_file and old_file != document.file.name:
        document.file.storage.delete(old_file)


def _refused_document(refused: _Refused, *, collection: Collection, batch: UploadBatch, user) -> Document:
    name = refused.name[:1000]
    document, _ = Document.objects.update_or_create(
        collection=collection,
        source_path=name,
        defaults={
            "title": title_from_name(name),
            "sha256": hashlib.sha256(refused.data).hexdigest(),
            "size_bytes": len(refused.data),
            "batch": batch,
            "uploaded_by": user,
            "status": Document.Status.FAILED,
            "progress": 0.0,
            "error": refused.reason,
        },
    )
    return document


def documents_enqueue(*, document_ids: list[int]) -> None:
    """Send queued documents to the workers, a few per task so embedding is batched across documents."""
    from .tasks import process_documents

    size = max(1, settings.INGEST_BATCH_DOCUMENTS)
    for start in range(0, len(document_ids), size):
        process_documents.delay(document_ids[start : start + size])


def document_retry(*, document: Document) -> bool:
    """Queue a failed document again; False when it is not failed or has no file to work from."""
    updated = Document.objects.filter(pk=document.pk, status=Document.Status.FAILED).exclude(file="").update(
        status=Document.Status.QUEUED, progress=0.0, error="", claim_token=""
    )
    if updated:
        transaction.on_commit(lambda: documents_enqueue(document_ids=[document.pk]))
        audit_document_retried(document=document)
    return bool(updated)


def documents_recover_stalled(*, stale_after: timedelta | None = None) -> list[int]:
    """Re-enqueue documents whose worker stopped reporting (killed mid-way) and queued ones that never started.

    Safe to run at any time: processing is idempotent and a live worker's claim is respected until it goes stale.
    """
    stale_after = timedelta(seconds=settings.INGEST_STALL_SECONDS) if stale_after is None else stale_after
    cutoff = timezone.now() - stale_after
    stalled = Document.objects.filter(
        Q(status__in=Document.ACTIVE_STATUSES, heartbeat_at__lte=cutoff)
        | Q(status__in=Document.ACTIVE_STATUSES, heartbeat_at__isnull=True)
        | Q(status=Document.Status.QUEUED, updated_at__lte=cutoff)
    )
    ids = list(stalled.values_list("pk", flat=True))
    # Back to queued: the abandoned run's claim is void, so if it is somehow still alive its next write stops it.
    Document.objects.filter(pk__in=ids).update(status=Document.Status.QUEUED, claim_token="", progress=0.0)
    if ids:
        logger.info("Re-enqueueing %d stalled document(s): %s", len(ids), ids[:20])
        transaction.on_commit(lambda: documents_enqueue(document_ids=ids))
    return ids
