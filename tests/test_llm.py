"""The language-model layer: the client against a real (fake) OpenAI-compatible server, the packaged model's
assembly on small parts, the server record shared between processes, and one run of the real model."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from chat import llm, local_model
from tests.fake_llm import FakeLLM

QUESTION = [{"role": "user", "content": "What is 2+2? Reply with just the number."}]


@pytest.fixture
def fake(settings):
    with FakeLLM() as server:
        settings.LLM_BASE_URL = server.base_url
        yield server


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    settings.DATA_DIR.mkdir()
    settings.LOCAL_LLM_MODEL_PATH = ""
    return settings.DATA_DIR


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- The client ---------------------------------------------------------------------------------


def test_stream_chat_yields_the_scripted_deltas_in_order_and_the_server_receives_the_messages(fake):
    fake.add_replies(["The ", "answer", " is", " 4", "."])
    messages = [{"role": "system", "content": "Answer from the passages."}, *QUESTION]

    deltas = list(llm.stream_chat(messages, max_tokens=50))

    assert deltas == ["The ", "answer", " is", " 4", "."]
    assert fake.last_messages == messages
    assert fake.requests[-1]["stream"] is True
    assert fake.requests[-1]["max_tokens"] == 50


def test_stream_chat_passes_stop_strings_and_the_server_ends_the_answer_before_them(fake):
    fake.add_replies("Four. [1]\nSources: handbook.pdf")

    text = "".join(llm.stream_chat(QUESTION, stop=["\nSources:"]))

    assert text == "Four. [1]"
    assert fake.requests[-1]["stop"] == ["\nSources:"]


def test_complete_returns_the_whole_answer_in_one_piece(fake):
    fake.add_replies("Two plus two is four.")

    assert llm.complete(QUESTION, temperature=0.0) == "Two plus two is four."
    assert fake.requests[-1].get("stream") in (None, False)
    assert fake.requests[-1]["temperature"] == 0.0


def test_a_server_that_is_down_raises_llm_unavailable_naming_its_url_without_long_retries(settings):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    settings.LLM_BASE_URL = url
    started = time.monotonic()

    with pytest.raises(llm.LLMUnavailable) as caught:
        list(llm.stream_chat(QUESTION))

    assert url in str(caught.value)
    assert caught.value.url == url
    assert time.monotonic() - started < 5


def test_an_http_500_raises_llm_unavailable_after_one_short_retry(fake, settings):
    fake.fail_with(500, "CUDA out of memory")

    with pytest.raises(llm.LLMUnavailable) as caught:
        llm.complete(QUESTION)

    assert "HTTP 500" in str(caught.value)
    assert fake.base_url in str(caught.value)
    assert len(fake.requests) == 1 + settings.LLM_MAX_RETRIES


def test_an_http_500_on_a_streamed_request_raises_llm_unavailable(fake):
    fake.fail_with(503)

    with pytest.raises(llm.LLMUnavailable, match="HTTP 503"):
        list(llm.stream_chat(QUESTION))


def test_a_connection_cut_mid_answer_raises_llm_unavailable_after_the_text_received(fake):
    fake.add_replies(["One", " two", " three", " four"])
    fake.disconnect_after = 2
    received = []

    with pytest.raises(llm.LLMUnavailable, match="not reachable"):
        for delta in llm.stream_chat(QUESTION):
            received.append(delta)

    assert received == ["One", " two"]


def test_a_first_token_slower_than_the_timeout_raises_llm_unavailable(fake, settings):
    settings.LLM_TIMEOUT_SECONDS = 0.5
    fake.first_token_delay = 10

    started = time.monotonic()
    with pytest.raises(llm.LLMUnavailable, match="did not answer within 0.5 s"):
        list(llm.stream_chat(QUESTION))
    assert time.monotonic() - started < 5


def test_a_local_model_that_cannot_start_raises_llm_unavailable(settings, monkeypatch):
    settings.LLM_BASE_URL = ""

    def broken_server() -> str:
        raise local_model.ServerStartError("The local model server could not start with /models/x.gguf")

    monkeypatch.setattr(local_model, "ensure_server", broken_server)

    with pytest.raises(llm.LLMUnavailable, match="could not start with /models/x.gguf"):
        list(llm.stream_chat(QUESTION))


# --- Token counting -----------------------------------------------------------------------------


def test_count_tokens_estimates_for_a_remote_server(fake):
    assert llm.count_tokens("a" * 35) == 10
    assert llm.count_tokens("") == 0
    assert fake.requests == []


def test_count_tokens_asks_the_local_llama_cpp_server_to_tokenize(settings, monkeypatch):
    settings.LLM_BASE_URL = ""
    with FakeLLM() as server:
        monkeypatch.setattr(local_model, "ensure_server", lambda: server.base_url)

        # The fake tokenizes per word and punctuation mark: 6 tokens, where the estimate would say 4.
        assert llm.count_tokens("What is 2+2?") == 6


def test_count_tokens_falls_back_to_the_estimate_when_the_local_server_cannot_start(settings, monkeypatch):
    settings.LLM_BASE_URL = ""

    def broken_server() -> str:
        raise local_model.ServerStartError("no model")

    monkeypatch.setattr(local_model, "ensure_server", broken_server)

    assert llm.count_tokens("What is 2+2?") == llm.estimate_tokens("What is 2+2?") == 4


# --- Assembling the packaged model --------------------------------------------------------------


def small_model(tmp_path: Path, *, sha256: str | None = None) -> tuple[local_model.ModelSource, bytes]:
    contents = [b"GGUF" + bytes(range(256)) * 40, os.urandom(70_000), b"tail of the model"]
    parts = []
    for number, content in enumerate(contents, start=1):
        part = tmp_path / "site-packages" / f"part{number:02}.bin"
        part.parent.mkdir(exist_ok=True)
        part.write_bytes(content)
        parts.append(part)
    joined = b"".join(contents)
    source = local_model.ModelSource(
        name="tiny", parts=tuple(parts), sha256=sha256 or hashlib.sha256(joined).hexdigest()
    )
    return source, joined


def test_model_file_joins_the_parts_in_order_into_the_data_dir(data_dir, tmp_path):
    source, joined = small_model(tmp_path)

    path = local_model.model_file(source=source)

    assert path == data_dir / "models" / "tiny.gguf"
    assert path.read_bytes() == joined


def test_a_wrong_checksum_raises_a_clear_error_and_leaves_no_file_behind(data_dir, tmp_path):
    source, _ = small_model(tmp_path, sha256="0" * 64)

    with pytest.raises(local_model.ModelChecksumError, match="tiny has sha256 .* expected 0000"):
        local_model.model_file(source=source)

    assert sorted(p.name for p in (data_dir / "models").iterdir()) == ["tiny.gguf.lock"]


def test_a_verified_model_is_neither_copied_nor_hashed_again(data_dir, tmp_path, monkeypatch):
    source, _ = small_model(tmp_path)
    first = local_model.model_file(source=source)

    def must_not_run(*args, **kwargs):
        raise AssertionError("the verified model was processed again")

    monkeypatch.setattr(local_model, "_copy_parts", must_not_run)
    monkeypatch.setattr(local_model, "_file_sha256", must_not_run)

    assert local_model.model_file(source=source) == first


def test_a_complete_model_without_its_marker_is_hashed_once_and_kept(data_dir, tmp_path, monkeypatch):
    source, joined = small_model(tmp_path)
    target = data_dir / "models" / "tiny.gguf"
    target.parent.mkdir()
    target.write_bytes(joined)  # copied in by hand, say
    monkeypatch.setattr(local_model, "_copy_parts", lambda *args: pytest.fail("the parts were copied again"))

    assert local_model.model_file(source=source) == target
    assert json.loads((target.parent / "tiny.gguf.sha256").read_text())["sha256"] == source.sha256


def test_a_damaged_model_file_and_leftovers_of_an_interrupted_join_are_replaced(data_dir, tmp_path):
    source, joined = small_model(tmp_path)
    models = data_dir / "models"
    models.mkdir()
    (models / "tiny.gguf").write_bytes(b"X" * len(joined))  # right size, wrong bytes
    (models / ".tiny.gguf.abc123.partial").write_bytes(b"half a model")

    path = local_model.model_file(source=source)

    assert path.read_bytes() == joined
    assert not list(models.glob("*.partial"))


def test_concurrent_callers_join_the_parts_once(data_dir, tmp_path, monkeypatch):
    source, joined = small_model(tmp_path)
    joins = []
    real_assemble = local_model._assemble

    def counting_assemble(*args, **kwargs):
        joins.append(1)
        time.sleep(0.2)  # hold the lock long enough for the other callers to queue on it
        real_assemble(*args, **kwargs)

    monkeypatch.setattr(local_model, "_assemble", counting_assemble)
    results = []
    # Each thread opens the lock file anew, so flock excludes them exactly as it excludes processes.
    threads = [threading.Thread(target=lambda: results.append(local_model.model_file(source=source))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(results) == 4 and len(set(results)) == 1
    assert results[0].read_bytes() == joined
    assert len(joins) == 1


# --- The server record --------------------------------------------------------------------------


def write_server_record(data_dir: Path, *, pid: int, port: int) -> None:
    (data_dir / "llm-server.json").write_text(json.dumps({"pid": pid, "port": port, "model": "m.gguf"}))


def test_ensure_server_reuses_a_healthy_server_recorded_by_another_process(data_dir, monkeypatch):
    monkeypatch.setattr(local_model, "_start_server", lambda: pytest.fail("a second server was started"))
    with FakeLLM() as other_process_server:
        write_server_record(data_dir, pid=os.getppid(), port=other_process_server.port)

        assert local_model.ensure_server() == other_process_server.base_url


def test_ensure_server_starts_its_own_when_the_recorded_process_is_dead(data_dir, monkeypatch):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with FakeLLM() as orphaned_server:
        write_server_record(data_dir, pid=int(finished.stdout), port=orphaned_server.port)
        monkeypatch.setattr(local_model, "_start_server", lambda: "http://127.0.0.1:1/v1")

        assert local_model.ensure_server() == "http://127.0.0.1:1/v1"


def test_ensure_server_starts_its_own_when_the_recorded_server_does_not_answer(data_dir, monkeypatch):
    write_server_record(data_dir, pid=os.getppid(), port=closed_port())
    monkeypatch.setattr(local_model, "_start_server", lambda: "http://127.0.0.1:1/v1")

    assert local_model.ensure_server() == "http://127.0.0.1:1/v1"


# --- The real packaged model --------------------------------------------------------------------


@pytest.mark.slow
def test_the_packaged_model_answers_a_streamed_question_from_one_shared_server(settings, tmp_path, monkeypatch):
    """Assembles the real model into the default data dir, BASE_DIR/data, not the session's temporary one: the
    1.1 GB copy is made once, found verified by later runs, and shared with the portal and the benchmark (a copy
    per session would cost 5 s and leave 1.1 GB in /tmp each time). The server is then started for a fresh data dir,
    so this process certainly starts its own rather than reusing one that a running portal recorded."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings.LOCAL_LLM_MODEL_PATH = ""
    settings.DATA_DIR = settings.BASE_DIR / "data"
    real_model = local_model.model_file()
    settings.DATA_DIR = tmp_path
    settings.LOCAL_LLM_MODEL_PATH = str(real_model)
    settings.LLM_BASE_URL = ""
    try:
        url = local_model.ensure_server()
        assert local_model.ensure_server() == url
        assert another_process_gets_the_server_url(tmp_path, real_model) == url

        deltas = list(llm.stream_chat(QUESTION, max_tokens=8, temperature=0.0))

        assert len(deltas) >= 1
        assert "4" in "".join(deltas)
        assert llm.count_tokens("What is 2+2? Reply with just the number.") == 13  # exact, not the estimate of 12
    finally:
        local_model.stop_server()
    assert not (tmp_path / "llm-server.json").exists()


def another_process_gets_the_server_url(data_dir: Path, model: Path) -> str:
    # local_model reads settings only, so the child needs no app registry (and no django.setup()).
    code = "from chat import local_model; print(local_model.ensure_server())"
    env = {**os.environ, "LANTERN_DATA_DIR": str(data_dir), "LOCAL_LLM_MODEL_PATH": str(model)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]
