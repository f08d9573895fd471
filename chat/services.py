"""Answering a question: retrieve -> prompt -> stream from the model -> check citations, recorded as Messages.

The chat page (SSE), the JSON API, the widget and `manage.py ask` all use `answer_stream` (through `answer_question`
when the turn is recorded in a conversation) and relay its events; none of them re-implements a step.

Events (AnswerEvent.type, data), in order:
    "start"      {"conversation_id", "question_id", "message_id"}                       answer_question only
    "sources"    {"passages": [Passage.as_dict()], "found", "search_query", "retrieval_ms"}  before any token
    "token"      {"text"}                                                                zero or more
    "error"      {"kind": "llm_unavailable", "message"}      the model could not answer; the passages stay useful
    "citations"  {"text", "answered", "citations": [...], "unverified": [n], "first_token_ms", "prompt_tokens"}
                 the final answer (markers to no passage removed) and each citation's check
    "done"       {"message_id", "status"}                                                answer_question only
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import QuerySet

from audit.services import audit_question_asked
from kb.selectors import passages_search

from . import citations, llm, prompting
from .models import Conversation, Feedback, Message, UnansweredQuestion

logger = logging.getLogger(__name__)

HISTORY_TURNS = 3
STOP_CHECK_SECONDS = 0.5
_FOLLOW_UP_START = re.compile(r"^\s*(and|or|but|also|what about|how about|same for|and what|then)\b", re.IGNORECASE)
_ANAPHORA = re.compile(r"\b(it|its|that|this|these|those|they|them|their|there|he|she|his|her|one|ones)\b", re.IGNORECASE)


@dataclass(frozen=True)
class AnswerEvent:
    type: str
    data: dict


class ConversationNotFound(Exception):
    """The conversation or message does not exist or belongs to someone else."""


# --- The model ----------------------------------------------------------------------------------


def model_warm_up() -> str:
    """Make the first question as quick as the next ones: start the packaged model if it serves (no LLM_BASE_URL),
    then have the server read the fixed start of every answer prompt once, so its cache already holds it (on 2 CPU
    cores that is ~250 tokens, about 7 s, that the first asker no longer waits for). Returns the server's base URL.
    Raises llm.LLMUnavailable (or local_model.LocalModelError) if the model cannot be reached."""
    if not settings.LLM_BASE_URL:
        from . import local_model

        local_model.ensure_server()
    llm.complete(prompting.warm_up_messages(), max_tokens=1, temperature=0.0)
    return llm.base_url()


# --- Conversations ---------------------------------------------------------------------------------


def conversation_create(*, user, title: str = "") -> Conversation:
    return Conversation.objects.create(user=user, title=title[:200])


def conversations_list(*, user) -> QuerySet[Conversation]:
    return Conversation.objects.filter(user=user)


def conversation_get(*, user, conversation_id: int) -> Conversation:
    try:
        return Conversation.objects.get(pk=conversation_id, user=user)
    except Conversation.DoesNotExist:
        raise ConversationNotFound(conversation_id) from None


WITHHELD_ANSWER = "This answer drew on documents you can no longer read, so it is hidden."


def message_scope(*, message: Message, readable: set[int]) -> Message:
    """The stored answer as a reader may see it now: passages of collections they can no longer read are dropped, and
    an answer that cited one is withheld (its text came from them). The row itself is not changed."""
    passages = message.passages or []
    visible = [p for p in passages if p.get("collection_id") in readable]
    if len(visible) == len(passages):
        return message
    hidden_numbers = {p.get("n") for p in passages} - {p.get("n") for p in visible}
    message.passages = visible
    if any(c.get("n") in hidden_numbers for c in message.citations or []):
        message.text = WITHHELD_ANSWER
        message.citations = []
    return message


def conversation_delete(*, user, conversation_id: int) -> None:
    """Delete one of `user`'s conversations with its messages and their feedback; someone else's is not found."""
    conversation_get(user=user, conversation_id=conversation_id).delete()


def conversation_history(*, conversation: Conversation, before_id: int | None = None) -> list[tuple[str, str]]:
    """The last completed (question, answer) turns, oldest first."""
    messages = conversation.messages.order_by("-id")
    if before_id is not None:
        messages = messages.filter(id__lt=before_id)
    turns: list[tuple[str, str]] = []
    answer: str | None = None
    for message in messages[: HISTORY_TURNS * 2 + 2]:
        if message.role == Message.Role.ASSISTANT:
            answer = message.text
        elif answer is not None:
            turns.append((message.text, answer))
            answer = None
    return list(reversed(turns[:HISTORY_TURNS]))


# --- Answering -------------------------------------------------------------------------------------


def is_follow_up(text: str) -> bool:
    """A question that leans on the previous turn ("and for contractors?", "how long does it take?")."""
    return bool(_FOLLOW_UP_START.search(text)) or bool(_ANAPHORA.search(text)) or len(text.split()) <= 4


def standalone_query(*, text: str, history: list[tuple[str, str]]) -> str:
    """The question as a search query that stands alone: follow-ups are rewritten by the model using the last turns.

    If the model cannot be reached or answers oddly, the previous question and this one are searched together,
    which keeps the topic without inventing anything.
    """
    if not history or not is_follow_up(text):
        return text
    fallback = f"{history[-1][0]} {text}"
    try:
        rewritten = llm.complete(prompting.rewrite_messages(question=text, history=history), max_tokens=48, temperature=0.0)
    except llm.LLMUnavailable as error:
        logger.info("Follow-up kept as is plus context: %s", error)
        return fallback
    rewritten = rewritten.strip().strip('"').splitlines()[0].strip() if rewritten.strip() else ""
    return rewritten if 3 <= len(rewritten) <= 300 else fallback


def answer_stream(
    *,
    user,
    text: str,
    history: list[tuple[str, str]] = (),
    collection_ids: list[int] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[AnswerEvent]:
    """Sources, then the model's tokens, then the checked citations. Nothing is written to the database."""
    history = list(history)
    search_query = standalone_query(text=text, history=history)
    started = time.perf_counter()
    found = passages_search(user=user, query=search_query, collection_ids=collection_ids)
    retrieval_ms = round((time.perf_counter() - started) * 1000)
    prompt = prompting.build_messages(question=text, passages=found, history=history) if found else None
    passages = prompt.passages if prompt else []
    yield AnswerEvent(
        "sources",
        {"passages": [p.as_dict() for p in passages], "found": bool(passages), "search_query": search_query,
         "retrieval_ms": retrieval_ms},
    )
    if prompt is None:
        yield _final(prompting.NOT_FOUND, passages=[], answered=False, first_token_ms=None, prompt_tokens=0)
        return
    pieces: list[str] = []
    first_token_ms = None
    asked = time.perf_counter()
    tokens = llm.stream_chat(prompt.messages, max_tokens=settings.ANSWER_MAX_TOKENS)
    try:
        for piece in tokens:
            if first_token_ms is None:
                first_token_ms = round((time.perf_counter() - asked) * 1000)
            pieces.append(piece)
            yield AnswerEvent("token", {"text": piece})
            if should_stop():
                break
    except llm.LLMUnavailable as error:
        yield AnswerEvent("error", {"kind": "llm_unavailable", "message": str(error)})
    finally:
        tokens.close()  # a stopped or abandoned answer frees the model server at once
    answer = "".join(pieces).strip()
    answered = bool(answer) and not prompting.is_abstention(answer)
    yield _final(answer, passages=passages, answered=answered, first_token_ms=first_token_ms, prompt_tokens=prompt.prompt_tokens)


def _final(answer: str, *, passages, answered: bool, first_token_ms, prompt_tokens: int) -> AnswerEvent:
    report = citations.check(answer=answer, passages=passages)
    return AnswerEvent(
        "citations",
        {
            "text": report.text,
            "answered": answered,
            "citations": [c.__dict__ | {"support": round(c.support, 3)} for c in report.citations],
            "unverified": report.unverified,
            "first_token_ms": first_token_ms,
            "prompt_tokens": prompt_tokens,
        },
    )


def answer_question(
    *, user, conversation: Conversation, text: str, collection_ids: list[int] | None = None
) -> Iterator[AnswerEvent]:
    """`answer_stream` recorded as a turn of `conversation`.

    Invariant: when the generator ends, however it ends (finished, stopped, model down, closed by a client that went
    away), the assistant Message holds what the asker saw: its passages, the text so far and a final status.
    """
    text = text.strip()
    if conversation.user_id != user.pk:
        raise ConversationNotFound(conversation.pk)
    history = conversation_history(conversation=conversation)
    question = Message.objects.create(conversation=conversation, role=Message.Role.USER, text=text)
    audit_question_asked(user=user, conversation=conversation, message=question, text=text)
    answer = Message.objects.create(conversation=conversation, role=Message.Role.ASSISTANT, status=Message.Status.STREAMING)
    if not conversation.title:
        conversation.title = text[:80]
    conversation.save(update_fields=["title", "updated_at"])
    yield AnswerEvent("start", {"conversation_id": conversation.pk, "question_id": question.pk, "message_id": answer.pk})
    record = _Record(answer=answer, started=time.perf_counter())
    try:
        for event in answer_stream(
            user=user, text=text, history=history, collection_ids=collection_ids, should_stop=record.stop_requested
        ):
            record.take(event)
            yield event
    finally:
        record.save(question=text, user=user)
    yield AnswerEvent("done", {"message_id": answer.pk, "status": answer.status})


@dataclass
class _Record:
    """What an answer has shown so far, saved onto its Message however the stream ends."""

    answer: Message
    started: float
    pieces: list[str] = field(default_factory=list)
    final: dict | None = None
    error: str = ""
    last_stop_check: float = 0.0

    def take(self, event: AnswerEvent) -> None:
        if event.type == "sources":
            self.answer.passages = event.data["passages"]
            self.answer.search_query = event.data["search_query"]
            self.answer.retrieval_ms = event.data["retrieval_ms"]
            self.answer.save(update_fields=["passages", "search_query", "retrieval_ms"])
        elif event.type == "token":
            self.pieces.append(event.data["text"])
        elif event.type == "error":
            self.error = event.data["message"]
        elif event.type == "citations":
            self.final = event.data

    def stop_requested(self) -> bool:
        now = time.monotonic()
        if now - self.last_stop_check < STOP_CHECK_SECONDS:
            return False
        self.last_stop_check = now
        return Message.objects.filter(pk=self.answer.pk, status=Message.Status.STOPPED).exists()

    def save(self, *, question: str, user) -> None:
        answer = self.answer
        stopped = Message.objects.filter(pk=answer.pk, status=Message.Status.STOPPED).exists()
        if self.final is not None:
            answer.text = self.final["text"]
            answer.citations = self.final["citations"]
            answer.answered = self.final["answered"]
            answer.first_token_ms = self.final["first_token_ms"]
            answer.prompt_tokens = self.final["prompt_tokens"]
        else:  # closed early (the client went away): keep what was streamed
            answer.text = "".join(self.pieces).strip()
            stopped = True
        answer.error = self.error
        answer.status = (
            Message.Status.STOPPED if stopped
            else Message.Status.FAILED if self.error
            else Message.Status.COMPLETE
        )
        answer.total_ms = round((time.perf_counter() - self.started) * 1000)
        answer.save()
        if self.final is not None and not self.final["answered"] and not self.error and not stopped:
            unanswered_record(message=answer, question=question, user=user)


def unanswered_record(*, message: Message, question: str, user) -> UnansweredQuestion:
    """A question the knowledge base could not answer, for admins to see what content is missing."""
    best = max((p["score"] for p in message.passages), default=None)
    reason = UnansweredQuestion.Reason.ABSTAINED if message.passages else UnansweredQuestion.Reason.NO_PASSAGES
    return UnansweredQuestion.objects.create(
        user=user, message=message, question=question, search_query=message.search_query, reason=reason, best_score=best
    )


def message_stop(*, user, message_id: int) -> None:
    """Ask a running answer to stop; it saves what it has streamed so far."""
    updated = Message.objects.filter(
        pk=message_id, conversation__user=user, role=Message.Role.ASSISTANT, status=Message.Status.STREAMING
    ).update(status=Message.Status.STOPPED)
    if not updated and not Message.objects.filter(pk=message_id, conversation__user=user).exists():
        raise ConversationNotFound(message_id)


def feedback_record(*, user, message_id: int, helpful: bool, comment: str = "") -> Feedback:
    """Thumbs up or down (one per user and answer; a second vote replaces the first). The message keeps the full
    answer and its passages, so the feedback is reviewed against exactly what was shown."""
    try:
        message = Message.objects.get(pk=message_id, conversation__user=user, role=Message.Role.ASSISTANT)
    except Message.DoesNotExist:
        raise ConversationNotFound(message_id) from None
    feedback, _ = Feedback.objects.update_or_create(
        message=message, user=user, defaults={"helpful": helpful, "comment": comment.strip()[:4000]}
    )
    return feedback


# --- Without a conversation (CLI, evaluation) ---------------------------------------------------------


@dataclass
class AnswerResult:
    question: str
    search_query: str = ""
    passages: list[dict] = field(default_factory=list)
    text: str = ""
    answered: bool = False
    citations: list[dict] = field(default_factory=list)
    unverified: list[int] = field(default_factory=list)
    error: str = ""
    retrieval_ms: int | None = None
    first_token_ms: int | None = None
    prompt_tokens: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def answer_collect(*, text: str, user=None, collection_ids: list[int] | None = None, on_token=None) -> AnswerResult:
    """The whole answer at once (tokens also go to `on_token` as they arrive)."""
    result = AnswerResult(question=text)
    for event in answer_stream(user=user, text=text, collection_ids=collection_ids):
        if event.type == "sources":
            result.passages = event.data["passages"]
            result.search_query = event.data["search_query"]
            result.retrieval_ms = event.data["retrieval_ms"]
        elif event.type == "token" and on_token is not None:
            on_token(event.data["text"])
        elif event.type == "error":
            result.error = event.data["message"]
        elif event.type == "citations":
            for key in ("text", "answered", "citations", "unverified", "first_token_ms", "prompt_tokens"):
                setattr(result, key, event.data[key])
    return result
