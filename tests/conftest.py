"""Shared fixtures. tests/isolation.py gives each session its own data dir and Celery queue."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _close_vector_store_at_exit():
    yield
    from kb import vectorstore

    vectorstore.close()


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


@pytest.fixture(autouse=True)
def _no_request_origin_left_behind():
    """A streamed response leaves its request's audit origin on the thread until the next request replaces it (see
    audit.middleware); every test here shares one thread, so each starts as a fresh process would."""
    from audit import services

    services.origin_set(None)
    yield


@pytest.fixture
def fake_llm_reply() -> str | None:
    """What the fake model answers when a test scripts nothing (None: FakeLLM's own default). Override per module."""
    return None


@pytest.fixture
def fake_llm(settings, fake_llm_reply):
    """A real OpenAI-compatible HTTP server on localhost, answering as scripted; the portal is pointed at it."""
    from tests.fake_llm import FakeLLM

    with FakeLLM(**({} if fake_llm_reply is None else {"default_reply": fake_llm_reply})) as fake:
        settings.LLM_BASE_URL = fake.base_url
        yield fake
