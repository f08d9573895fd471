"""The JSON API's questions, conversations and feedback: thin edges over chat.services, as the chat page is.

An answer is the chat page's answer: `services.answer_question` records it in a conversation, and its events are
either streamed as the page streams them (server-sent events) or gathered into one JSON object.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from django.http import Http404, HttpResponse
from ninja import Field, Query, Router, Schema
from pydantic import StringConstraints

from accounts.throttling import ASK_THROTTLES
from kb.selectors import collections_readable

from . import services
from .models import Feedback, Message
from .views import MAX_COMMENT_CHARS, MAX_QUESTION_CHARS, _title, sse_response

router = Router(tags=["Questions and conversations"])

CONVERSATION_NOT_FOUND = "Conversation not found."
ANSWER_NOT_FOUND = "Answer not found."


# --- Shapes --------------------------------------------------------------------------------------------------------


class AskIn(Schema):
    question: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUESTION_CHARS)]
    conversation_id: int | None = Field(None, description="Continue this conversation; a new one starts when omitted.")
    collection_ids: list[int] | None = Field(
        None, min_length=1, description="Search only these collections (default: every collection you may read)."
    )
    stream: bool = Field(False, description="Stream server-sent events (as with `Accept: text/event-stream`).")


class PassageOut(Schema):
    n: int
    chunk_id: int
    document_id: int
    collection_id: int
    title: str
    heading_path: list[str]
    page: int | None
    text: str
    score: float
    url: str = Field(description="The passage in its document, on the portal.")


class CitationOut(Schema):
    n: int = Field(description="The passage cited.")
    sentence: str
    verified: bool = Field(description="The passage supports the sentence.")
    support: float


class AnswerOut(Schema):
    conversation_id: int
    message_id: int
    status: str = Field(description="complete, stopped, or failed (the model was unreachable; the passages stand).")
    text: str
    answered: bool = Field(description="False when the knowledge base holds no answer.")
    passages: list[PassageOut]
    citations: list[CitationOut]
    unverified: list[int] = Field(description="Passages cited by a sentence they do not support.")
    error: str = ""


class ConversationOut(Schema):
    id: int
    title: str
    created_at: datetime
    updated_at: datetime


class ConversationPage(Schema):
    count: int
    items: list[ConversationOut]


class FeedbackOut(Schema):
    message_id: int
    helpful: bool
    comment: str


class MessageOut(Schema):
    id: int
    role: str
    text: str
    status: str
    answered: bool
    passages: list[PassageOut]
    citations: list[CitationOut]
    created_at: datetime
    feedback: FeedbackOut | None = None


class ConversationDetail(ConversationOut):
    messages: list[MessageOut]


class FeedbackIn(Schema):
    helpful: bool
    comment: str = Field("", max_length=MAX_COMMENT_CHARS)


class StopOut(Schema):
    message_id: int
    stopping: bool


# --- Asking --------------------------------------------------------------------------------------------------------


SSE_DESCRIPTION = (
    "With `stream: true` (or `Accept: text/event-stream`) the answer streams as server-sent events, "
    "`event: <type>` / `data: <json>`, in this order: start, sources, token…, [error], citations, done."
)


@router.post(
    "/ask",
    response={200: AnswerOut},
    throttle=ASK_THROTTLES,
    summary="Ask a question",
    description=SSE_DESCRIPTION,
    openapi_extra={"responses": {200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}}},
)
def ask(request, payload: AskIn):
    user = request.auth
    collection_ids = _readable_collections(user, payload.collection_ids)
    if payload.conversation_id is not None:
        conversation = _own_conversation(user, payload.conversation_id)
    else:
        conversation = services.conversation_create(user=user, title=_title(payload.question))
    events = services.answer_question(
        user=user, conversation=conversation, text=payload.question, collection_ids=collection_ids
    )
    if payload.stream or "text/event-stream" in request.headers.get("Accept", ""):
        return sse_response(request, events)
    return _gathered(events)


def _readable_collections(user, requested: list[int] | None) -> list[int] | None:
    """The requested collections, each one the user may read; one they may not is reported as not found."""
    if requested is None:
        return None
    readable = set(collections_readable(user=user))
    if missing := [pk for pk in requested if pk not in readable]:
        raise Http404(f"No collection with id {missing[0]} among those you may read.")
    return list(dict.fromkeys(requested))


def _gathered(events) -> dict:
    answer: dict = {"passages": [], "citations": [], "unverified": [], "text": "", "answered": False, "error": ""}
    try:
        for event in events:
            if event.type == "start":
                answer["conversation_id"] = event.data["conversation_id"]
                answer["message_id"] = event.data["message_id"]
            elif event.type == "sources":
                answer["passages"] = event.data["passages"]
            elif event.type == "error":
                answer["error"] = event.data["message"]
            elif event.type == "citations":
                answer.update({key: event.data[key] for key in ("text", "answered", "citations", "unverified")})
            elif event.type == "done":
                answer["status"] = event.data["status"]
    finally:
        events.close()
    return answer


# --- Conversations -------------------------------------------------------------------------------------------------


def _own_conversation(user, conversation_id: int):
    """Someone else's conversation is as absent as one that never existed."""
    try:
        return services.conversation_get(user=user, conversation_id=conversation_id)
    except services.ConversationNotFound:
        raise Http404(CONVERSATION_NOT_FOUND) from None


@router.get("/conversations", response=ConversationPage, summary="Your conversations, latest first")
def conversations(request, limit: int = Query(50, ge=1, le=200), offset: int = Query(0, ge=0)):
    found = services.conversations_list(user=request.auth)
    return {"count": found.count(), "items": list(found[offset : offset + limit])}


@router.get("/conversations/{conversation_id}", response=ConversationDetail, summary="A conversation with its messages")
def conversation(request, conversation_id: int):
    user = request.auth
    found = _own_conversation(user, conversation_id)
    readable = set(collections_readable(user=user))
    feedback = {f.message_id: f for f in Feedback.objects.filter(user=user, message__conversation=found)}
    messages = []
    for message in found.messages.all():
        if message.role == Message.Role.ASSISTANT:
            services.message_scope(message=message, readable=readable)  # passages the user may no longer read go
        messages.append(_message_out(message, feedback.get(message.pk)))
    return {"id": found.pk, "title": found.title, "created_at": found.created_at, "updated_at": found.updated_at,
            "messages": messages}


def _message_out(message: Message, feedback: Feedback | None) -> dict:
    return {
        "id": message.pk,
        "role": message.role,
        "text": message.text,
        "status": message.status,
        "answered": message.answered,
        "passages": message.passages or [],
        "citations": message.citations or [],
        "created_at": message.created_at,
        "feedback": {"message_id": message.pk, "helpful": feedback.helpful, "comment": feedback.comment} if feedback else None,
    }


@router.delete("/conversations/{conversation_id}", response={204: None}, summary="Delete a conversation")
def conversation_delete(request, conversation_id: int):
    try:
        services.conversation_delete(user=request.auth, conversation_id=conversation_id)
    except services.ConversationNotFound:
        raise Http404(CONVERSATION_NOT_FOUND) from None
    return HttpResponse(status=204)


# --- Answers: feedback, stop ---------------------------------------------------------------------------------------


@router.post("/messages/{message_id}/feedback", response=FeedbackOut, summary="Rate an answer (a second vote replaces the first)")
def feedback(request, message_id: int, payload: FeedbackIn):
    try:
        record = services.feedback_record(
            user=request.auth, message_id=message_id, helpful=payload.helpful, comment=payload.comment
        )
    except services.ConversationNotFound:
        raise Http404(ANSWER_NOT_FOUND) from None
    return {"message_id": message_id, "helpful": record.helpful, "comment": record.comment}


@router.post("/messages/{message_id}/stop", response=StopOut, summary="Stop an answer that is still streaming")
def stop(request, message_id: int):
    try:
        services.message_stop(user=request.auth, message_id=message_id)
    except services.ConversationNotFound:
        raise Http404(ANSWER_NOT_FOUND) from None
    return {"message_id": message_id, "stopping": True}
