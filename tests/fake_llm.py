"""A real OpenAI-compatible chat server for tests: stdlib http.server on 127.0.0.1, a random port, its own thread.

It speaks the wire format of OpenAI, vLLM and llama.cpp, so the code under test runs its real client, its real
HTTP and its real SSE parsing; only the model is scripted.

    from tests.fake_llm import FakeLLM

    def test_answer_streams(settings):
        with FakeLLM(replies=[["Hel", "lo", "!"]]) as fake:
            settings.LLM_BASE_URL = fake.base_url
            assert list(llm.stream_chat([{"role": "user", "content": "Hi"}])) == ["Hel", "lo", "!"]
            assert fake.last_messages == [{"role": "user", "content": "Hi"}]

Replies
    One reply per chat request, in order; when they run out, `default_reply` answers. A reply is a list of str
    (sent exactly as those deltas) or a str (sent in word-sized deltas, " word" with its leading space, like a
    tokenizer). Add more with `add_replies(...)`. Each delta counts as one token: `max_tokens` cuts the reply
    (finish_reason "length"), and `stop` strings end it before the stop text, as real servers do.

Streaming (`"stream": true`)
    `text/event-stream`, chunked: a first chunk with the assistant role, one `data: {chat.completion.chunk}` per
    delta, a last chunk with finish_reason (and a usage chunk if `stream_options.include_usage`), `data: [DONE]`.
    Without `stream`, one `chat.completion` JSON object.

Failure modes
    first_token_delay=2.0     headers go out at once, the first delta after 2 s (a slow CPU model; a client read
                              timeout shorter than that fires)
    fail_with(500)            every following request answers that HTTP status with an OpenAI-style error body
                              (`recover()` undoes it)
    disconnect_after=3        the connection is cut after 3 deltas, without [DONE] (a server dying mid-answer)

Recording
    `requests` holds the JSON body of every chat request received (failed ones included), in order;
    `messages` the `messages` of each; `last_messages` the latest. Tests assert on prompts with these.

Also served: GET /health, GET /v1/models, and POST /tokenize {"content": ...} -> {"tokens": [...]} in llama.cpp's
shape, one token per word or punctuation mark.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = str | list[str]


class FakeLLM:
    """See the module docstring. Use as a context manager, or call start() and stop()."""

    def __init__(
        self,
        replies: Iterable[Reply] = (),
        *,
        default_reply: Reply = "OK",
        first_token_delay: float = 0.0,
        disconnect_after: int | None = None,
        model: str = "fake-model",
    ) -> None:
        self.default_reply = default_reply
        self.first_token_delay = first_token_delay
        self.disconnect_after = disconnect_after
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self._replies: list[Reply] = list(replies)
        self._failure: tuple[int, str] | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---

    def start(self) -> FakeLLM:
        self._stopping.clear()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="fake-llm", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # cuts short any first_token_delay in progress
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "FakeLLM is not started"
        return self._httpd.server_address[1]

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What LLM_BASE_URL should be: the OpenAI-style base, ending in /v1."""
        return f"{self.root_url}/v1"

    # --- scripting ---

    def add_replies(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def fail_with(self, status: int = 500, message: str = "The fake model crashed") -> FakeLLM:
        with self._lock:
            self._failure = (status, message)
        return self

    def recover(self) -> None:
        with self._lock:
            self._failure = None

    # --- recording ---

    @property
    def messages(self) -> list[list[dict[str, Any]]]:
        with self._lock:
            return [request.get("messages", []) for request in self.requests]

    @property
    def last_messages(self) -> list[dict[str, Any]]:
        messages = self.messages
        assert messages, "FakeLLM received no chat request"
        return messages[-1]

    # --- used by the handler ---

    def _take(self, body: dict[str, Any]) -> tuple[int, str] | Reply:
        """Record the request; return the failure to send, or the reply to stream."""
        with self._lock:
            self.requests.append(body)
            if self._failure is not None:
                return self._failure
            return self._replies.pop(0) if self._replies else self.default_reply

    def _wait_first_token(self) -> None:
        if self.first_token_delay:
            self._stopping.wait(self.first_token_delay)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeLLM

    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client hanging up (a timeout, a closed stream) is a scenario under test, not a fault
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked streaming, as the real servers do
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's signature
        pass  # keep test output clean

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path == "/health":
            self._send_json(200, {"status": "ok"})
        elif self.path in ("/v1/models", "/models"):
            model = {"id": self.server.fake.model, "object": "model", "created": 0, "owned_by": "fake"}
            self._send_json(200, {"object": "list", "data": [model]})
        else:
            self._send_error(404, f"No route GET {self.path}")

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        except ValueError:
            self._send_error(400, "The body is not JSON")
            return
        if self.path in ("/v1/chat/completions", "/chat/completions"):
            self._chat(body)
        elif self.path == "/tokenize":
            tokens = re.findall(r"\w+|[^\w\s]", body.get("content", ""))
            self._send_json(200, {"tokens": list(range(len(tokens)))})
        else:
            self._send_error(404, f"No route POST {self.path}")

    # --- chat ---

    def _chat(self, body: dict[str, Any]) -> None:
        fake = self.server.fake
        outcome = fake._take(body)
        if isinstance(outcome, tuple):
            self._send_error(*outcome)
            return
        deltas, finish_reason = _limit(_deltas(outcome), body.get("max_tokens"), body.get("stop"))
        completion_id = f"chatcmpl-fake-{len(fake.requests)}"
        if body.get("stream"):
            self._stream(completion_id, deltas, finish_reason, body)
        else:
            self._send_json(200, _completion(completion_id, fake.model, deltas, finish_reason, body))

    def _stream(self, completion_id: str, deltas: list[str], finish_reason: str, body: dict[str, Any]) -> None:
        fake = self.server.fake
        chunk = _chunk_factory(completion_id, fake.model)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            self._send_event(chunk({"role": "assistant", "content": ""}))
            fake._wait_first_token()
            for sent, delta in enumerate(deltas):
                if fake.disconnect_after is not None and sent >= fake.disconnect_after:
                    self._cut_connection()
                    return
                self._send_event(chunk({"content": delta}))
            self._send_event(chunk({}, finish_reason=finish_reason))
            if (body.get("stream_options") or {}).get("include_usage"):
                self._send_event({**chunk({}), "choices": [], "usage": _usage(body, deltas)})
            self._send_chunk(b"data: [DONE]\n\n")
            self._send_chunk(b"")  # the terminating zero-length chunk
        except ConnectionError:
            self.close_connection = True  # the client went away; so do we

    def _send_event(self, data: dict[str, Any]) -> None:
        self._send_chunk(f"data: {json.dumps(data)}\n\n".encode())

    def _send_chunk(self, payload: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
        self.wfile.flush()

    def _cut_connection(self) -> None:
        """Drop the socket mid-body: the client sees an incomplete chunked response, as when a server dies."""
        self.close_connection = True
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)

    # --- plain responses ---

    def _send_json(self, status: int, data: dict[str, Any]) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _send_error(self, status: int, message: str) -> None:
        kind = "server_error" if status >= 500 else "invalid_request_error"
        self._send_json(status, {"error": {"message": message, "type": kind, "code": status}})


def _deltas(reply: Reply) -> list[str]:
    return list(reply) if isinstance(reply, list) else re.findall(r"\s*\S+", reply)


def _limit(deltas: list[str], max_tokens: int | None, stop: str | list[str] | None) -> tuple[list[str], str]:
    """Apply `stop` (the text ends before the first stop string) and `max_tokens` (one delta = one token)."""
    stops = [stop] if isinstance(stop, str) else [s for s in stop or [] if s]
    text = "".join(deltas)
    cut = min((pos for s in stops if (pos := text.find(s)) != -1), default=None)
    if cut is not None:
        deltas = _truncate(deltas, cut)
    if max_tokens is not None and len(deltas) > max_tokens:
        return deltas[:max_tokens], "length"
    return deltas, "stop"


def _truncate(deltas: list[str], length: int) -> list[str]:
    """The deltas that make up the first `length` characters, the last one shortened if it crosses the cut."""
    kept: list[str] = []
    for delta in deltas:
        remaining = length - sum(map(len, kept))
        if remaining <= 0:
            break
        kept.append(delta[:remaining])
    return kept


def _chunk_factory(completion_id: str, model: str):
    created = int(time.time())

    def chunk(delta: dict[str, Any], *, finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }

    return chunk


def _completion(
    completion_id: str, model: str, deltas: list[str], finish_reason: str, body: dict[str, Any]
) -> dict[str, Any]:
    message = {"role": "assistant", "content": "".join(deltas)}
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fake",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": _usage(body, deltas),
    }


def _usage(body: dict[str, Any], deltas: list[str]) -> dict[str, int]:
    prompt = " ".join(str(message.get("content", "")) for message in body.get("messages", []))
    prompt_tokens = len(re.findall(r"\w+|[^\w\s]", prompt))
    return {"prompt_tokens": prompt_tokens, "completion_tokens": len(deltas), "total_tokens": prompt_tokens + len(deltas)}

