"""The embedded broker (kombu's filesystem transport, portal/broker.py): a reader never sees half a message."""

import pytest
from django.conf import settings
from kombu import Connection

from portal import broker


@pytest.fixture
def channel(tmp_path):
    options = {"data_folder_in": str(tmp_path), "data_folder_out": str(tmp_path), "processed_folder": str(tmp_path / "done")}
    with Connection(f"{broker.SCHEME}://", transport_options=options) as connection:
        yield connection.default_channel


def test_a_message_being_written_is_invisible_to_readers(channel, monkeypatch):
    seen_while_writing = []

    def write_then_look(path, data):
        with open(path, "wb") as file:
            file.write(data[: len(data) // 2])  # half written, as a slow disk or a pre-empted writer leaves it
            seen_while_writing.append(channel._size("tasks"))
            file.write(data[len(data) // 2 :])

    monkeypatch.setattr(broker, "write_message", write_then_look)
    channel._put("tasks", {"body": "x" * 1000})

    assert seen_while_writing == [0]
    assert channel._get("tasks") == {"body": "x" * 1000}


def test_the_portal_uses_the_atomic_transport_when_there_is_no_redis():
    if settings.REDIS_URL:
        assert settings.CELERY_BROKER_URL == settings.REDIS_URL
    else:
        assert settings.CELERY_BROKER_URL.startswith(f"{broker.SCHEME}://")
