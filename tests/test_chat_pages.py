"""The chat page as an employee uses it: asking, the streamed answer and its sources, stopping, feedback, and the
passage page a citation opens. The model is tests.fake_llm.FakeLLM; retrieval, prompting and citations are real."""

from __future__ import annotations

import json
import re
import socket

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client
from django.urls import reverse

from chat.models import Conversation, Feedback, Message
from chat.services import conversation_create
from kb.models import Chunk

from .fake_llm import FakeLLM
from .filemakers import pdf
from .helpers import markdown, upload_and_process, wait_for

LEAVE_POLICY = markdown(
    "Leave policy",
    ("Annual leave", "Employees get 25 days of paid annual leave per year. Unused days carry over until March."),
    ("Sick leave", "Sick leave needs a doctor's note after three consecutive days of absence."),
)
QUESTION = "How many days of annual leave do employees get?"
ANSWER = "Employees get 25 days of paid annual leave per year [1]."
NOT_REACHABLE = "The answer model is not reachable right now; the passages below are what the knowledge base found."


@pytest.fixture
def employee(db, django_user_model):
    return django_user_model.objects.create_user("bob", password="pw-bob-12345")


@pytest.fixture
def signed_in(client, employee):
    client.force_login(employee)
    return client


@pytest.fixture
def fake_llm_reply():
    return ANSWER


@pytest.fixture
def handbook(collection):
    return upload_and_process(collection, ("leave.md", LEAVE_POLICY))


def events_of(response) -> list[tuple[str, dict]]:
    """The server-sent events of a whole streamed response, in order."""
    return parse_events(b"".join(response.streaming_content).decode())


def parse_events(body: str) -> list[tuple[str, dict]]:
    events = []
    for block in body.split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def ask(client, question: str = QUESTION, conversation: Conversation | None = None):
    body = {"question": question, "conversation": conversation.pk if conversation else None}
    return client.post(reverse("chat:ask"), body, content_type="application/json", headers={"Accept": "text/event-stream"})


def first(events: list[tuple[str, dict]], kind: str) -> dict:
    return next(data for event, data in events if event == kind)


# --- The page ------------------------------------------------------------------------------------------------


def test_an_employee_who_is_not_staff_lands_on_the_chat_page_with_a_question_box(signed_in):
    response = signed_in.get("/", follow=True)
    assert response.redirect_chain[-1][0] == reverse("chat:page")
    page = response.content.decode()
    assert '<label for="question">Ask a question</label>' in page
    assert re.search(r'<textarea id="question"[^>]*autofocus', page)
    assert ">Ask</button>" in page and ">Stop</button>" in page and ">New chat</a>" in page
    assert "<script>" not in page  # behaviour comes from static files only


def test_the_chat_page_needs_a_signed_in_user(client, db):
    response = client.get(reverse("chat:page"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_page_lists_only_the_askers_own_conversations(signed_in, employee, django_user_model):
    other = django_user_model.objects.create_user("carol", password="pw-carol-1234")
    conversation_create(user=employee, title="Parental leave questions")
    conversation_create(user=other, title="Carol's salary review")
    page = signed_in.get(reverse("chat:page")).content.decode()
    assert "Parental leave questions" in page
    assert "Carol" not in page


def test_another_users_conversation_and_answers_are_not_found(signed_in, django_user_model, handbook, fake_llm):
    other_client = Client()
    other = django_user_model.objects.create_user("carol", password="pw-carol-1234")
    other_client.force_login(other)
    events_of(ask(other_client))
    conversation = Conversation.objects.get(user=other)
    answer = conversation.messages.get(role=Message.Role.ASSISTANT)

    assert signed_in.get(reverse("chat:conversation", args=[conversation.pk])).status_code == 404
    assert ask(signed_in, conversation=conversation).status_code == 404
    assert signed_in.post(reverse("chat:feedback", args=[answer.pk]), {"helpful": "true"}).status_code == 404
    assert signed_in.post(reverse("chat:stop", args=[answer.pk])).status_code == 404
    assert not Feedback.objects.exists()
    assert conversation.messages.count() == 2  # nothing was added to Carol's conversation


# --- Asking ----------------------------------------------------------------------------------------------------


def test_an_answer_streams_its_sources_before_its_first_token(signed_in, handbook, fake_llm):
    fake_llm.add_replies(["Employees get ", "25 days ", "of paid annual leave per year ", "[1]."])
    response = ask(signed_in)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    assert response["Cache-Control"] == "no-cache" and response["X-Accel-Buffering"] == "no"
    events = events_of(response)
    kinds = [event for event, _ in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert kinds.index("sources") < kinds.index("token") < kinds.index("citations")
    sources = first(events, "sources")
    assert sources["found"] is True
    assert sources["passages"][0]["title"] == "Leave policy"
    assert "25 days of paid annual leave" in sources["passages"][0]["text"]
    assert "".join(data["text"] for event, data in events if event == "token") == ANSWER
    assert first(events, "citations")["text"] == ANSWER
    assert first(events, "done")["status"] == "complete"


def test_the_first_question_starts_a_conversation_named_after_it_and_follow_ups_join_it(signed_in, employee, handbook, fake_llm):
    start = first(events_of(ask(signed_in)), "start")
    conversation = Conversation.objects.get(pk=start["conversation_id"], user=employee)
    assert conversation.title == QUESTION
    events_of(ask(signed_in, "And sick leave?", conversation=conversation))
    assert Conversation.objects.filter(user=employee).count() == 1
    page = signed_in.get(reverse("chat:conversation", args=[conversation.pk])).content.decode()
    assert page.count('class="question-text"') == 2 + 1  # two turns, plus the template for the next one
    assert "And sick leave?" in page


def test_without_javascript_the_form_waits_for_the_answer_and_shows_the_conversation(signed_in, employee, handbook, fake_llm):
    response = signed_in.post(reverse("chat:ask"), {"question": QUESTION}, headers={"Accept": "text/html,*/*;q=0.8"})
    conversation = Conversation.objects.get(user=employee)
    assert response.status_code == 302 and response["Location"] == reverse("chat:conversation", args=[conversation.pk])
    page = signed_in.get(response["Location"]).content.decode()
    assert "Employees get 25 days of paid annual leave per year [1]." in page
    assert ">Leave policy</a>" in page


def test_an_empty_question_is_refused_with_a_reason(signed_in):
    response = ask(signed_in, "   ")
    assert response.status_code == 400
    assert response.json()["error"] == "Type a question first."


def test_a_citation_links_to_the_passage_page_which_highlights_that_passage(signed_in, handbook, fake_llm):
    events = events_of(ask(signed_in))
    passage = first(events, "sources")["passages"][0]
    cited = first(events, "citations")["citations"]
    assert [c["n"] for c in cited] == [1]

    page = signed_in.get(passage["url"])
    assert page.status_code == 200
    html = page.content.decode()
    assert "<h1>Leave policy</h1>" in html
    assert "Annual leave" in html  # the heading path
    highlighted = re.search(r"<mark id=\"passage\">(.*?)</mark>", html, re.S).group(1)
    assert "Employees get 25 days of paid annual leave per year." in highlighted
    assert "doctor&#x27;s note" in html  # the text around it is there too


def test_a_stored_answer_shows_its_sources_with_links_to_their_passages(signed_in, handbook, fake_llm):
    start = first(events_of(ask(signed_in)), "start")
    page = signed_in.get(reverse("chat:conversation", args=[start["conversation_id"]])).content.decode()
    answer = Message.objects.get(pk=start["message_id"])
    url = answer.passages[0]["url"] + "#passage"
    assert f'class="source-link" href="{url}">Leave policy</a>' in page
    data = json.loads(re.search(r'<script id="answers-data" type="application/json">(.*?)</script>', page, re.S).group(1))
    stored = data[str(answer.pk)]
    assert stored["text"] == ANSWER
    assert stored["citations"][0]["n"] == 1 and stored["passages"][0]["link"] == url


@pytest.mark.parametrize("outage", ["server error", "nothing listening"])
def test_when_the_model_is_down_the_answer_says_so_and_the_sources_are_still_there(signed_in, settings, handbook, fake_llm, outage):
    if outage == "server error":
        fake_llm.fail_with(500)
    else:
        settings.LLM_BASE_URL = f"http://127.0.0.1:{closed_port()}/v1"
    events = events_of(ask(signed_in))
    kinds = [event for event, _ in events]
    assert kinds.index("sources") < kinds.index("error")
    assert first(events, "error")["kind"] == "llm_unavailable"
    assert first(events, "sources")["passages"][0]["title"] == "Leave policy"
    assert first(events, "done")["status"] == "failed"

    page = signed_in.get(reverse("chat:conversation", args=[first(events, "start")["conversation_id"]])).content.decode()
    notice = re.search(r'<p class="answer-notice" role="alert"( hidden)?>', page)
    assert notice.group(1) is None  # the notice is shown, not hidden
    assert NOT_REACHABLE in page
    assert ">Leave policy</a>" in page


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_question_nothing_matches_gets_no_sources_and_says_so(signed_in, handbook, fake_llm):
    events = events_of(ask(signed_in, "Quarterly revenue of the Antarctic zinc subsidiary"))
    sources = first(events, "sources")
    assert sources["passages"] == [] and sources["found"] is False
    assert not fake_llm.requests  # the model is not asked to invent an answer
    page = signed_in.get(reverse("chat:conversation", args=[first(events, "start")["conversation_id"]])).content.decode()
    assert re.search(r'<p class="no-sources muted small">No passage in the knowledge base matched', page)


# --- Stopping --------------------------------------------------------------------------------------------------


def test_the_stop_button_ends_the_answer_and_keeps_what_was_written(signed_in, handbook, fake_llm):
    fake_llm.add_replies(["Employees ", "get ", "25 ", "days ", "of ", "leave ", "[1]."])
    response = ask(signed_in)
    stream = iter(response.streaming_content)
    seen: list[tuple[str, dict]] = []
    while not seen or seen[-1][0] != "token":
        seen += parse_events(next(stream).decode())
    message_id = first(seen, "start")["message_id"]

    stopped = signed_in.post(reverse("chat:stop", args=[message_id]))
    assert stopped.status_code == 200 and stopped.json()["stopping"] is True
    rest = parse_events(b"".join(stream).decode())
    assert [data["text"] for event, data in rest if event == "token"] == []
    assert first(rest, "done")["status"] == "stopped"
    answer = Message.objects.get(pk=message_id)
    assert answer.status == Message.Status.STOPPED and answer.text == "Employees"


@pytest.mark.django_db(transaction=True)  # closing a response closes the database connection, as after any request
def test_an_answer_whose_reader_goes_away_is_saved_as_stopped(signed_in, handbook, fake_llm):
    fake_llm.add_replies(["Employees ", "get ", "25 ", "days ", "[1]."])
    response = ask(signed_in)
    stream = iter(response.streaming_content)
    seen: list[tuple[str, dict]] = []
    while not seen or seen[-1][0] != "token":
        seen += parse_events(next(stream).decode())
    response.close()  # what a WSGI server does when the browser goes away
    answer = Message.objects.get(pk=first(seen, "start")["message_id"])
    assert answer.status == Message.Status.STOPPED and answer.text == "Employees"
    assert answer.passages[0]["title"] == "Leave policy"


@pytest.mark.django_db(transaction=True)
def test_under_asgi_events_reach_the_browser_while_the_model_is_still_thinking(employee, collection, settings):
    """uvicorn path: the answer runs in its own thread and each event is sent as it happens, not at the end."""
    upload_and_process(collection, ("leave.md", LEAVE_POLICY))
    with FakeLLM(default_reply=ANSWER, first_token_delay=60) as fake:
        settings.LLM_BASE_URL = fake.base_url

        async def read_until_sources() -> list[tuple[str, dict]]:
            client = AsyncClient()
            await client.aforce_login(employee)
            response = await client.post(
                reverse("chat:ask"), {"question": QUESTION}, content_type="application/json",
                headers={"Accept": "text/event-stream"},
            )
            assert response.is_async
            seen: list[tuple[str, dict]] = []
            stream = aiter(response.streaming_content)
            while "sources" not in [event for event, _ in seen]:
                seen += parse_events((await anext(stream)).decode())
            await stream.aclose()  # the browser goes away while the model is still silent
            return seen

        seen = async_to_sync(read_until_sources)()
        assert first(seen, "sources")["passages"][0]["title"] == "Leave policy"
        wait_for(lambda: fake.requests, timeout=30, message="the model to be asked")
    # Stopping the fake model released its first token; the answer thread then saw that nobody was reading.
    answer = Message.objects.get(pk=first(seen, "start")["message_id"])
    wait_for(lambda: Message.objects.get(pk=answer.pk).status == Message.Status.STOPPED, timeout=30, message="stopped")
    assert not [event for event, _ in seen if event == "token"]


# --- Feedback --------------------------------------------------------------------------------------------------


def test_feedback_is_stored_with_the_answer_its_passages_and_citations(signed_in, employee, handbook, fake_llm):
    message_id = first(events_of(ask(signed_in)), "start")["message_id"]
    url = reverse("chat:feedback", args=[message_id])
    response = signed_in.post(url, {"helpful": False, "comment": "It missed the carry-over rule."}, content_type="application/json")
    assert response.status_code == 200
    assert response.json() == {"message_id": message_id, "helpful": False, "comment": "It missed the carry-over rule."}

    feedback = Feedback.objects.get(user=employee)
    assert feedback.helpful is False and feedback.comment == "It missed the carry-over rule."
    assert feedback.message.text == ANSWER
    assert feedback.message.passages[0]["title"] == "Leave policy"
    assert feedback.message.citations[0]["n"] == 1

    signed_in.post(url, {"helpful": True}, content_type="application/json")
    assert Feedback.objects.get(user=employee).helpful is True  # a second vote replaces the first
    page = signed_in.get(reverse("chat:conversation", args=[feedback.message.conversation_id])).content.decode()
    assert re.search(r'class="thumb up" title="Helpful" aria-pressed="true"', page)


def test_feedback_needs_a_verdict_and_a_csrf_token(handbook, fake_llm, employee, signed_in):
    message_id = first(events_of(ask(signed_in)), "start")["message_id"]
    url = reverse("chat:feedback", args=[message_id])
    response = signed_in.post(url, {"comment": "hm"}, content_type="application/json")
    assert response.status_code == 400 and "helpful" in response.json()["error"]
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(employee)
    assert strict.post(url, {"helpful": "true"}).status_code == 403
    assert strict.post(reverse("chat:ask"), {"question": QUESTION}).status_code == 403


# --- The passage page and the original file ----------------------------------------------------------------


def test_a_document_containing_a_script_is_shown_escaped_on_the_passage_page(signed_in, collection):
    text = b"Badge policy. <script>alert('owned')</script> Visitors wear a red badge <b>at all times</b>."
    (document,) = upload_and_process(collection, ("badges.txt", text))
    chunk = document.chunks.get()
    html = signed_in.get(reverse("kb:passage", args=[chunk.pk])).content.decode()
    assert "<script>alert" not in html and "<b>at all times" not in html
    assert "&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt;" in html


def test_a_pdf_passage_links_to_the_original_at_its_page_which_opens_inline_with_safe_headers(signed_in, collection):
    pages = [
        " ".join(f"Rule {i}: travellers keep the receipt for expense {i} of their trip." for i in range(40)),
        " ".join(f"Hotel rule {i}: a night in city {i} is capped at {100 + i} euros." for i in range(40)),
    ]
    (document,) = upload_and_process(collection, ("travel.pdf", pdf(pages)))
    chunk = Chunk.objects.filter(document=document, page_start=2).first()  # one that starts on the second page
    html = signed_in.get(reverse("kb:passage", args=[chunk.pk])).content.decode()
    file_url = reverse("kb:document_file", args=[document.pk])
    assert f'href="{file_url}#page=2"' in html and "Page</dt><dd>2" in html

    response = signed_in.get(file_url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("inline")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content).startswith(b"%PDF")


def test_an_html_document_is_downloaded_never_shown_as_a_page(signed_in, collection):
    page = b"<html><head><title>Canteen</title></head><body><p>Lunch is served from noon.</p><script>alert(1)</script></body></html>"
    (document,) = upload_and_process(collection, ("canteen.html", page))
    response = signed_in.get(reverse("kb:document_file", args=[document.pk]))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    assert "html" not in response["Content-Type"]
    assert response["X-Content-Type-Options"] == "nosniff"


def test_passages_and_files_need_a_signed_in_user_and_an_existing_passage(signed_in, handbook):
    chunk = handbook[0].chunks.first()
    anonymous = Client()
    assert anonymous.get(reverse("kb:passage", args=[chunk.pk])).status_code == 302
    assert anonymous.get(reverse("kb:document_file", args=[handbook[0].pk])).status_code == 302
    assert signed_in.get(reverse("kb:passage", args=[chunk.pk + 1000])).status_code == 404


def test_passages_and_files_of_a_collection_the_user_may_not_read_are_not_found(signed_in, handbook, monkeypatch):
    from kb import selectors

    chunk = handbook[0].chunks.first()
    assert signed_in.get(reverse("kb:passage", args=[chunk.pk])).status_code == 200
    monkeypatch.setattr(selectors, "collections_readable", lambda *, user: [])
    assert signed_in.get(reverse("kb:passage", args=[chunk.pk])).status_code == 404
    assert signed_in.get(reverse("kb:document_file", args=[handbook[0].pk])).status_code == 404


def test_a_merged_passage_is_highlighted_through_its_last_chunk(signed_in, collection):
    text = " ".join(f"Clause {i}: the supplier delivers batch {i} within {i + 2} working days." for i in range(60))
    (document,) = upload_and_process(collection, ("contract.txt", text.encode()))
    first_chunk, second_chunk = document.chunks.order_by("ordinal")[:2]
    html = signed_in.get(reverse("kb:passage", args=[first_chunk.pk]) + f"?end={second_chunk.pk}").content.decode()
    highlighted = re.search(r"<mark id=\"passage\">(.*?)</mark>", html, re.S).group(1)
    assert highlighted.startswith(first_chunk.text[:40]) and highlighted.endswith(second_chunk.text[-40:])
