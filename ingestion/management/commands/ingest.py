"""`manage.py ingest PATH... --collection NAME`: the upload page from a shell, with a progress bar."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

from django.core.management import BaseCommand, CommandError
from tqdm import tqdm

from ingestion.services import IncomingFile, documents_upload, max_upload_bytes
from ingestion.worker import worker_for_this_process
from kb.models import Document, UploadBatch
from kb.selectors import batch_progress
from kb.services import collection_create

FILES_PER_TRANSACTION = 100


def files_under(paths: list[Path]) -> Iterator[tuple[str, Path]]:
    """(name, path) for every file given or below a given folder; names are relative to the folder given."""
    for root in paths:
        if root.is_file():
            yield root.name, root
            continue
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if path.is_file() and not any(part.startswith(".") for part in relative.parts):
                yield relative.as_posix(), path


def read(name: str, path: Path) -> IncomingFile:
    size = path.stat().st_size
    if size > max_upload_bytes():
        return IncomingFile(name=name, data=b"", declared_size=size)
    return IncomingFile(name=name, data=path.read_bytes())


class Command(BaseCommand):
    help = "Add files or folders (and .zip archives) to a collection, processed by the same workers as uploads."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--collection", required=True, help="Collection name (created if missing).")
        parser.add_argument("--no-wait", action="store_true", help="Queue the files and return without waiting.")

    def handle(self, *args, paths, collection, no_wait, **options):
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise CommandError(f"Not found: {', '.join(missing)}")
        target = collection_create(name=collection)
        with self._worker_context(no_wait):
            batch, unchanged = self._upload(paths, target)
            if no_wait:
                self.stdout.write(f"Queued upload {batch.pk}; follow it on the documents page.")
                return
            self._watch(batch)
        self._summary(batch, unchanged=unchanged)

    def _worker_context(self, no_wait: bool):
        """Embedded mode without a running portal: this process hosts the worker until its files are done."""
        return nullcontext() if no_wait else worker_for_this_process()

    def _upload(self, paths: list[Path], collection) -> tuple[UploadBatch, int]:
        entries = list(files_under(paths))
        if not entries:
            raise CommandError("No files found.")
        batch = UploadBatch.objects.create(collection=collection, label=f"manage.py ingest: {len(entries)} file(s)")
        unchanged = 0
        for start in range(0, len(entries), FILES_PER_TRANSACTION):
            group = (read(name, path) for name, path in entries[start : start + FILES_PER_TRANSACTION])
            unchanged += len(documents_upload(collection=collection, files=group, batch=batch).unchanged)
        return batch, unchanged

    def _watch(self, batch: UploadBatch) -> None:
        progress = batch_progress(batch=batch)
        with tqdm(total=progress.total, unit="doc", desc="Ingesting", smoothing=0.1) as bar:
            while True:
                progress = batch_progress(batch=batch)
                bar.n = round(progress.fraction * progress.total, 2)
                bar.set_postfix(indexed=progress.indexed, failed=progress.failed, refresh=False)
                bar.refresh()
                if progress.done:
                    return
                time.sleep(0.5)

    def _summary(self, batch: UploadBatch, *, unchanged: int) -> None:
        documents = batch.documents.all()
        indexed = documents.filter(status=Document.Status.INDEXED)
        failed = documents.filter(status=Document.Status.FAILED)
        chunks = sum(d.chunk_count for d in indexed)
        self.stdout.write(self.style.SUCCESS(f"{indexed.count()} document(s) indexed ({chunks} passages)."))
        if unchanged:
            self.stdout.write(f"{unchanged} file(s) unchanged since their last upload; skipped.")
        for document in failed:
            self.stderr.write(f"FAILED {document.source_path}: {document.error}")
        if failed:
            raise CommandError(f"{failed.count()} document(s) failed; the others were indexed.")
