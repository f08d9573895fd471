"""State changes of the knowledge base that must keep the database and the vector store in step."""

from __future__ import annotations

import logging

from django.db import transaction

from . import vectorstore
from .models import Collection, Document

logger = logging.getLogger(__name__)


def collection_create(*, name: str, description: str = "") -> Collection:
    collection, _ = Collection.objects.get_or_create(name=name, defaults={"description": description})
    return collection


def document_delete(*, document: Document) -> None:
    """Remove a document everywhere: its vectors (every version), its file, its rows."""
    vectorstore.points_delete(document_id=document.pk)
    file_name, storage = document.file.name, document.file.storage
    with transaction.atomic():
        document.delete()
    if file_name:
        storage.delete(file_name)


def collection_delete(*, collection: Collection) -> None:
    """Remove a collection with all its documents' vectors and files."""
    vectorstore.points_delete(collection_id=collection.pk)
    files = [(d.file.storage, d.file.name) for d in collection.documents.exclude(file="").only("file")]
    with transaction.atomic():
        collection.delete()
    for storage, name in files:
        storage.delete(name)
