"""Shared fixtures. Every test session gets its own data dir (files, embedded Qdrant, broker) and Celery queue."""

import os
import tempfile
import uuid

# Before Django reads its settings: isolate the session from a developer's real data and from other sessions.
os.environ["LANTERN_DATA_DIR"] = tempfile.mkdtemp(prefix="lantern-test-")
os.environ["CELERY_QUEUE"] = f"lantern-test-{uuid.uuid4().hex[:8]}"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _empty_vector_store():
    """Each test starts with an empty vector store (database rows are rolled back; points must go too)."""
    yield
    from kb import vectorstore

    if vectorstore._client is not None:
        vectorstore.client().delete_collection(vectorstore.settings.QDRANT_COLLECTION)
        vectorstore._ensure_collection(vectorstore.client())


@pytest.fixture
def collection(db):
    from kb.models import Collection

    return Collection.objects.create(name="Handbook")


@pytest.fixture
def staff_user(db, django_user_model):
    return django_user_model.objects.create_user("alice", password="pw-alice-123", is_staff=True)
