"""One client for any OpenAI-compatible chat server: vLLM, llama.cpp, or the packaged model served in-process.

LLM_BASE_URL names the server; empty means the packaged model (`local_model.ensure_server()`, started on first
use). Every way the server can be down (refused connection, timeout, 5xx, a stream cut short, the local model
failing to start) surfaces as `LLMUnavailable`, whose message says what is down and where; the caller decides
what the user sees instead of an answer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import openai
from django.conf import settings

from . import local_model

logger = logging.getLogger(__name__)

# A server that does not accept a connection within this long is down; waiting LLM_TIMEOUT_SECONDS tells no more.
CONNECT_TIMEOUT_SECONDS = 5.0
# English prose runs ~4 characters per token with Qwen's and Llama's tokenizers; 3.5 errs on the side of
# overcounting, so a prompt trimmed to an estimated budget still fits the real one.
CHARS_PER_TOKEN_ESTIMATE = 3.5
TOKENIZE_TIMEOUT_SECONDS = 10.0


class LLMUnavailable(Exception):
    """The language model cannot answer now. `url` is where it was looked for."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


def base_url() -> str:
    """The OpenAI-compatible base URL ("http://host:port/v1"): LLM_BASE_URL, else the local model's server."""
    if settings.LLM_BASE_URL:
        return settings.LLM_BASE_URL.rstrip("/")
    try:
        return local_model.ensure_server()
    except local_model.LocalModelError as exc:
        raise LLMUnavailable(f"The local language model could not be started: {exc}", url="local model") from exc


_clients: dict[tuple[str, str, float, int], openai.OpenAI] = {}
_clients_lock = threading.Lock()


def client(url: str) -> openai.OpenAI:
    """The shared client for `url`, created on first use (it holds the connection pool)."""
    key = (url, settings.LLM_API_KEY, settings.LLM_TIMEOUT_SECONDS, settings.LLM_MAX_RETRIES)
    with _clients_lock:
        if key not in _clients:
            _clients[key] = openai.OpenAI(
                base_url=url,
                api_key=settings.LLM_API_KEY or "not-needed",
                timeout=openai.Timeout(settings.LLM_TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS),
                max_retries=settings.LLM_MAX_RETRIES,
                http_client=_direct_http_client() if _is_loopback(url) else None,
            )
        return _clients[key]


def _is_loopback(url: str) -> bool:
    return urllib.parse.urlsplit(url).hostname in {"127.0.0.1", "localhost", "::1"}


def _direct_http_client() -> openai.DefaultHttpxClient:
    """openai's default HTTP client, minus HTTP(S)_PROXY from the environment: a proxy cannot reach loopback."""
    return openai.DefaultHttpxClient(trust_env=False)


def stream_chat(
    messages: list[dict],
    *,
    max_tokens: int = 512,
    temperature: float = 0.1,
    stop: list[str] | None = None,
) -> Iterator[str]:
    """Yield the answer's text as the server produces it. Nothing is sent until the first item is asked for.

    Raises LLMUnavailable, possibly after some text was yielded (the connection dropped mid-answer).
    Closing the iterator early closes the connection, which tells the server to stop generating.
    """
    url = base_url()
    with _unavailable_as_error(url):
        stream = client(url).chat.completions.create(
            **_request(messages, max_tokens=max_tokens, temperature=temperature, stop=stop), stream=True
        )
        with contextlib.closing(stream):
            for chunk in stream:
                yield from _delta_texts(chunk)


def complete(
    messages: list[dict],
    *,
    max_tokens: int = 512,
    temperature: float = 0.1,
    stop: list[str] | None = None,
) -> str:
    """The whole answer in one piece. Raises LLMUnavailable."""
    url = base_url()
    with _unavailable_as_error(url):
        response = client(url).chat.completions.create(
            **_request(messages, max_tokens=max_tokens, temperature=temperature, stop=stop)
        )
    if not response.choices:
        return ""
    return response.choices[0].message.content or ""


def _request(messages: list[dict], *, max_tokens: int, temperature: float, stop: list[str] | None) -> dict:
    request = {"model": settings.LLM_MODEL, "messages": messages, "max_tokens": max_tokens, "temperature": temperature}
    if stop:
        request["stop"] = stop
    return request


def _delta_texts(chunk) -> Iterator[str]:
    for choice in chunk.choices:
        if choice.delta is not None and choice.delta.content:
            yield choice.delta.content


@contextlib.contextmanager
def _unavailable_as_error(url: str) -> Iterator[None]:
    """Translate openai's 'the server is down or broken' errors into LLMUnavailable; let request errors through.

    APITimeoutError (a subclass of APIConnectionError) and APIConnectionError cover refused connections, timeouts
    and streams cut short; InternalServerError is any 5xx; authentication, permission and not-found errors mean a
    misconfigured LLM_API_KEY / LLM_MODEL / LLM_BASE_URL, which the user cannot fix either. A bare APIError is an
    error event inside a 200 stream. BadRequestError (e.g. a prompt longer than the context) is a bug of the
    caller and is not translated.
    """
    try:
        yield
    except openai.APITimeoutError as exc:
        raise LLMUnavailable(
            f"The language model at {url} did not answer within {settings.LLM_TIMEOUT_SECONDS:g} s", url=url
        ) from exc
    except openai.APIConnectionError as exc:
        raise LLMUnavailable(f"The language model at {url} is not reachable ({_cause(exc)})", url=url) from exc
    except (
        openai.InternalServerError,
        openai.AuthenticationError,
        openai.PermissionDeniedError,
        openai.NotFoundError,
    ) as exc:
        raise LLMUnavailable(
            f"The language model at {url} answered HTTP {exc.status_code}: {exc.message}", url=url
        ) from exc
    except openai.APIError as exc:
        if isinstance(exc, openai.APIStatusError):
            raise
        raise LLMUnavailable(f"The language model at {url} failed while answering: {exc.message}", url=url) from exc


def _cause(exc: BaseException) -> str:
    """The innermost reason ("Connection refused"), which says more than openai's "Connection error."."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return str(exc) or type(exc).__name__


# --- Token counting -----------------------------------------------------------------------------


def count_tokens(text: str) -> int:
    """Tokens in `text` as the model sees it (without chat-template tokens).

    Exact when the packaged model serves (llama.cpp's POST /tokenize, at the server root, not under /v1);
    `estimate_tokens` for any other server, or if the local server cannot be reached.
    """
    if settings.LLM_BASE_URL or not text:
        return estimate_tokens(text)
    try:
        return len(_tokenize(base_url().removesuffix("/v1"), text))
    except (LLMUnavailable, urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        logger.warning("Counting tokens by estimate: the local model server could not tokenize (%s)", exc)
        return estimate_tokens(text)


def estimate_tokens(text: str) -> int:
    """An upper-leaning estimate: len(text) / 3.5, rounded up."""
    return math.ceil(len(text) / CHARS_PER_TOKEN_ESTIMATE)


def _tokenize(root_url: str, text: str) -> list[int]:
    request = urllib.request.Request(
        f"{root_url}/tokenize",
        data=json.dumps({"content": text}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with local_model.open_local(request, timeout=TOKENIZE_TIMEOUT_SECONDS) as response:
        return json.loads(response.read())["tokens"]
