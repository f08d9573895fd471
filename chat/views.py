"""The chat page and its endpoints: thin edges over chat.services. Answers stream to the page as server-sent events."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator

from django.contrib.auth.decorators import login_required
from django.core.handlers.asgi import ASGIRequest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections
from django.http import JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from kb.selectors import collections_readable

from . import services
from .models import Conversation, Feedback, Message

logger = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 4000
MAX_COMMENT_CHARS = 4000
TITLE_CHARS = 80
SIDEBAR_CONVERSATIONS = 200


# --- The page ----------------------------------------------------------------------------------------------------


@login_required
@require_GET
def chat_page(request, conversation_id: int | None = None):
    conversation = _own_conversation(request.user, conversation_id) if conversation_id else None
    turns = _turns(conversation, request.user) if conversation else []
    return render(
        request,
        "chat/chat.html",
        {
            "conversations": services.conversations_list(user=request.user)[:SIDEBAR_CONVERSATIONS],
            "conversation": conversation,
            "turns": turns,
            # What chat.js needs to render stored answers as it renders streamed ones (markdown, citation links).
            "answers_data": {
                str(turn["answer"].pk): _answer_data(turn["answer"]) for turn in turns if turn["answer"] is not None
            },
        },
    )


def _own_conversation(user, conversation_id: int) -> Conversation:
    """Only the asker ever sees a conversation: anyone else gets the same 404 as for one that does not exist."""
    return get_object_or_404(Conversation, pk=conversation_id, user=user)


def _own_answer(user, message_id: int) -> Message:
    return get_object_or_404(
        Message, pk=message_id, role=Message.Role.ASSISTANT, conversation__user=user
    )


def _turns(conversation: Conversation, user) -> list[dict]:
    """Questions paired with their answers (an answer may be missing if its question failed before one was saved)."""
    messages = list(conversation.messages.all())
    feedback = {f.message_id: f for f in Feedback.objects.filter(user=user, message__conversation=conversation)}
    readable = set(collections_readable(user=user))
    turns: list[dict] = []
    for message in messages:
        if message.role == Message.Role.USER or not turns or turns[-1]["answer"] is not None:
            turns.append({"question": message if message.role == Message.Role.USER else None, "answer": None})
        if message.role == Message.Role.ASSISTANT:
            services.message_scope(message=message, readable=readable)
            message.sources = [{**p, "link": passage_link(p)} for p in message.passages or []]
            turns[-1]["answer"] = message
            turns[-1]["feedback"] = feedback.get(message.pk)
    return turns


def passage_link(passage: dict) -> str:
    """The passage page for a passage dict; a merged passage (several chunks) is highlighted to its last chunk.
    chat.js builds the same link for streamed passages."""
    url = passage.get("url") or reverse("kb:passage", args=[passage["chunk_id"]])
    chunk_ids = passage.get("chunk_ids") or []
    if len(chunk_ids) > 1 and "end=" not in url:
        url += ("&" if "?" in url else "?") + f"end={chunk_ids[-1]}"
    return url if "#" in url else url + "#passage"


def _answer_data(message: Message) -> dict:
    return {
        "text": message.text,
        "status": message.status,
        "answered": message.answered,
        "citations": message.citations,
        "passages": [
            {"n": p.get("n"), "title": p.get("title", ""), "link": passage_link(p)} for p in message.passages or []
        ],
    }


# --- Asking: the answer streams as server-sent events ------------------------------------------------------------


@login_required
@require_POST
def ask(request):
    """Answer a question in a conversation (a new one when none is given), streaming answer_question's events.

    `event: <type>` / `data: <json>` per event, in the order of the contract: start, sources, token..., [error],
    citations, done. A plain HTML form post (no JavaScript) waits for the whole answer and is sent to the page.
    """
    payload = _payload(request)
    question = str(payload.get("question") or "").strip()
    if not question:
        return JsonResponse({"error": "Type a question first."}, status=400)
    if len(question) > MAX_QUESTION_CHARS:
        return JsonResponse({"error": f"Questions are limited to {MAX_QUESTION_CHARS} characters."}, status=400)
    conversation_id = _int_or_none(payload.get("conversation") or payload.get("conversation_id"))
    if conversation_id:
        conversation = _own_conversation(request.user, conversation_id)
    else:
        conversation = services.conversation_create(user=request.user, title=_title(question))
    events = services.answer_question(user=request.user, conversation=conversation, text=question)
    if _is_plain_form_post(request):
        for _ in events:
            pass
        return redirect("chat:conversation", conversation_id=conversation.pk)
    return sse_response(request, events)


def sse_response(request, events: Iterator) -> StreamingHttpResponse:
    """answer_question's (or answer_stream's) events as a server-sent event stream; the chat page and the widget
    relay answers through this."""
    stream = _sse_async(events) if isinstance(request, ASGIRequest) else _sse_sync(events)
    response = StreamingHttpResponse(stream, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx would otherwise hold the tokens back
    return response


def _payload(request) -> dict:
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
    return request.POST.dict()


def _int_or_none(value) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(value) if isinstance(value, str) and value.strip().isdigit() else None


def _title(question: str) -> str:
    first_line = question.splitlines()[0].strip()
    return first_line if len(first_line) <= TITLE_CHARS else first_line[: TITLE_CHARS - 1].rstrip() + "…"


def _is_plain_form_post(request) -> bool:
    accept = request.headers.get("Accept", "")
    return "text/html" in accept and "text/event-stream" not in accept


def _sse(event_type: str, data: dict) -> bytes:
    return f"event: {event_type}\ndata: {json.dumps(data, cls=DjangoJSONEncoder)}\n\n".encode()


INTERNAL_ERROR = {"kind": "internal", "message": "Something went wrong while answering. Please try again."}


def _sse_sync(events: Iterator) -> Iterator[bytes]:
    """For WSGI servers and the sync test client. Closing this (a client gone) closes the answer, which saves
    the partial answer as stopped."""
    try:
        for event in events:
            yield _sse(event.type, event.data)
    except Exception:
        logger.exception("Answering failed")
        yield _sse("error", INTERNAL_ERROR)
    finally:
        events.close()


_FINISHED = object()


async def _sse_async(events: Iterator) -> AsyncIterator[bytes]:
    """For ASGI (uvicorn). Django buffers a sync iterator whole under ASGI, so the sync answer generator runs in a
    thread of its own and hands events over through a queue; tokens reach the browser as they come.

    When the browser goes away, Django cancels this generator; the thread then closes the answer at its next event
    (the answer saves what it has as stopped) and releases its database connections.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    consumer_gone = threading.Event()

    def hand_over(item) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:
            pass  # the event loop is closed: the server is shutting down and nobody is listening

    def produce() -> None:
        try:
            for event in events:
                if consumer_gone.is_set():
                    break
                hand_over(_sse(event.type, event.data))
        except Exception:
            logger.exception("Answering failed")
            hand_over(_sse("error", INTERNAL_ERROR))
        finally:
            try:
                events.close()
            finally:
                connections.close_all()  # this thread's connections; nothing else would close them
                hand_over(_FINISHED)

    # With the request's context variables, so what the answer records (the audit log's who and from where) is known.
    threading.Thread(target=contextvars.copy_context().run, args=(produce,), name="chat-answer", daemon=True).start()
    try:
        while (item := await queue.get()) is not _FINISHED:
            yield item
    finally:
        consumer_gone.set()


@login_required
@require_POST
def stop(request, message_id: int):
    """Ask a running answer to stop; it keeps what it has written so far."""
    message = _own_answer(request.user, message_id)
    services.message_stop(user=request.user, message_id=message.pk)
    return JsonResponse({"message_id": message.pk, "stopping": True})


# --- Feedback ----------------------------------------------------------------------------------------------------

_YES = {"1", "true", "yes", "up", "helpful"}
_NO = {"0", "false", "no", "down", "unhelpful"}


@login_required
@require_POST
def feedback(request, message_id: int):
    """Thumbs up or down on an answer, with an optional comment; a second vote replaces the first."""
    message = _own_answer(request.user, message_id)
    payload = _payload(request)
    helpful = _bool_or_none(payload.get("helpful"))
    if helpful is None:
        return JsonResponse({"error": "Say whether the answer was helpful (helpful=true or helpful=false)."}, status=400)
    comment = str(payload.get("comment") or "").strip()[:MAX_COMMENT_CHARS]
    record = services.feedback_record(user=request.user, message_id=message.pk, helpful=helpful, comment=comment)
    if _is_plain_form_post(request):
        url = reverse("chat:conversation", kwargs={"conversation_id": message.conversation_id})
        return redirect(f"{url}#answer-{message.pk}")
    return JsonResponse({"message_id": message.pk, "helpful": record.helpful, "comment": record.comment})


def _bool_or_none(value) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if value is not None else ""
    return True if text in _YES else False if text in _NO else None
