"""Answering a question end to end (retrieval, prompt, a real OpenAI-compatible server, citation check, records)."""

import json
import socket

import pytest
from django.core.management import CommandError, call_command

from chat import services
from chat.models import Feedback, Message, UnansweredQuestion
from chat.prompting import NOT_FOUND
from tests.helpers import markdown, upload_and_process

pytestmark = pytest.mark.django_db

LEAVE = markdown(
    "Leave policy",
    ("Annual leave", "You can carry over a maximum of 240 annual leave hours into the next leave year."),
    ("Contractors", "Contractors do not accrue annual leave; their agency sets their time off."),
)


@pytest.fixture
def handbook(collection):
    upload_and_process(collection, ("leave.md", LEAVE))
    return collection


@pytest.fixture
def employee(django_user_model):
    return django_user_model.objects.create_user("erin", password="pw-erin-12345")


def ask(user, text, conversation=None):
    conversation = conversation or services.conversation_create(user=user)
    events = list(services.answer_question(user=user, conversation=conversation, text=text))
    return conversation, events


def test_sources_come_before_the_first_token_and_the_answer_is_recorded(handbook, fake_llm, employee):
    fake_llm.add_replies(["You can carry over ", "240 hours [1]."])

    conversation, events = ask(employee, "How many leave hours carry over?")

    types = [e.type for e in events]
    assert types[:2] == ["start", "sources"] and types[-2:] == ["citations", "done"]
    assert types.index("sources") < types.index("token")
    passages = events[1].data["passages"]
    assert passages[0]["title"] == "Leave policy" and passages[0]["url"].startswith(f"/passages/{passages[0]['chunk_id']}/")
    answer = Message.objects.get(pk=events[0].data["message_id"])
    assert answer.text == "You can carry over 240 hours [1]."
    assert answer.status == Message.Status.COMPLETE and answer.answered
    assert answer.passages == passages
    assert answer.citations[0]["n"] == 1 and answer.citations[0]["verified"]
    assert conversation.messages.filter(role="user").get().text == "How many leave hours carry over?"


def test_the_prompt_holds_the_numbered_passage_and_the_question(handbook, fake_llm, employee):
    ask(employee, "How many leave hours carry over?")

    prompt = fake_llm.last_messages[-1]["content"]
    assert "[1]" in prompt and "240 annual leave hours" in prompt
    assert "How many leave hours carry over?" in prompt


def test_a_citation_to_a_passage_that_does_not_exist_is_removed(handbook, fake_llm, employee):
    fake_llm.add_replies(["Up to 240 hours [1][7]."])

    _, events = ask(employee, "How many leave hours carry over?")

    final = events[-2].data
    assert final["text"] == "Up to 240 hours [1]."
    assert [c["n"] for c in final["citations"]] == [1]


def test_a_question_nothing_matches_is_recorded_as_unanswered_without_calling_the_model(handbook, fake_llm, employee):
    _, events = ask(employee, "Which football club won the 1998 World Cup final?")

    sources = next(e for e in events if e.type == "sources")
    assert sources.data["passages"] == [] and sources.data["found"] is False
    assert events[-2].data["text"] == NOT_FOUND and not events[-2].data["answered"]
    assert fake_llm.requests == []
    unanswered = UnansweredQuestion.objects.get()
    assert unanswered.reason == "no_passages" and unanswered.user == employee


def test_an_answer_where_the_model_abstains_is_recorded_as_unanswered(handbook, fake_llm, employee):
    fake_llm.add_replies([NOT_FOUND])

    ask(employee, "How many leave hours can interns carry over?")

    assert UnansweredQuestion.objects.get().reason == "abstained"


def test_when_the_model_server_is_down_the_passages_are_still_given(handbook, settings, employee):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        settings.LLM_BASE_URL = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"

    _, events = ask(employee, "How many leave hours carry over?")

    by_type = {e.type: e.data for e in events}
    assert by_type["sources"]["passages"][0]["title"] == "Leave policy"
    assert "not reachable" in by_type["error"]["message"] or "could not" in by_type["error"]["message"].lower()
    answer = Message.objects.get(pk=by_type["done"]["message_id"])
    assert answer.status == Message.Status.FAILED and answer.error
    assert not UnansweredQuestion.objects.exists()


def test_a_follow_up_is_rewritten_into_a_standalone_search(handbook, fake_llm, employee):
    fake_llm.add_replies("Up to 240 hours [1].", "annual leave for contractors", "Contractors accrue none [1].")
    conversation, _ = ask(employee, "How many leave hours carry over?")

    _, events = ask(employee, "and for contractors?", conversation=conversation)

    sources = next(e for e in events if e.type == "sources").data
    assert sources["search_query"] == "annual leave for contractors"
    assert "and for contractors?" in fake_llm.messages[1][-1]["content"]  # the rewrite request saw the question
    assert "How many leave hours carry over?" in json.dumps(fake_llm.messages[1])  # ... and the earlier turn
    assert any("their agency sets their time off" in p["text"] for p in sources["passages"])


def test_a_follow_up_still_searches_with_context_when_the_model_cannot_rewrite_it(handbook, fake_llm, employee):
    conversation, _ = ask(employee, "How many leave hours carry over?")
    fake_llm.fail_with(500)

    _, events = ask(employee, "and for contractors?", conversation=conversation)

    assert next(e for e in events if e.type == "sources").data["search_query"] == (
        "How many leave hours carry over? and for contractors?"
    )


def test_stopping_an_answer_keeps_what_was_written(handbook, fake_llm, employee, monkeypatch):
    monkeypatch.setattr(services, "STOP_CHECK_SECONDS", 0)  # look for the stop request after every token
    fake_llm.add_replies(["You ", "can ", "carry ", "over "] + ["more "] * 200)
    conversation = services.conversation_create(user=employee)
    stream = services.answer_question(user=employee, conversation=conversation, text="How many leave hours carry over?")
    message_id = next(stream).data["message_id"]
    tokens = 0
    for event in stream:
        tokens += event.type == "token"
        if event.type == "token" and tokens == 3:
            services.message_stop(user=employee, message_id=message_id)

    answer = Message.objects.get(pk=message_id)
    assert answer.status == Message.Status.STOPPED
    assert answer.text == "You can carry"


def test_a_client_that_goes_away_leaves_the_partial_answer_saved(handbook, fake_llm, employee):
    fake_llm.add_replies(["Up ", "to ", "240 ", "hours ", "[1]."])
    conversation = services.conversation_create(user=employee)
    stream = services.answer_question(user=employee, conversation=conversation, text="How many leave hours carry over?")
    for event in stream:
        if event.type == "token":
            break
    stream.close()

    answer = conversation.messages.get(role="assistant")
    assert answer.status == Message.Status.STOPPED and answer.text == "Up"
    assert answer.passages


def test_someone_elses_conversation_cannot_be_continued(handbook, fake_llm, employee, django_user_model):
    other = django_user_model.objects.create_user("olga", password="pw-olga-12345")
    conversation = services.conversation_create(user=other)

    with pytest.raises(services.ConversationNotFound):
        list(services.answer_question(user=employee, conversation=conversation, text="Hi"))


def test_feedback_is_stored_with_the_answer_and_a_second_vote_replaces_the_first(handbook, fake_llm, employee):
    _, events = ask(employee, "How many leave hours carry over?")
    message_id = events[-1].data["message_id"]

    services.feedback_record(user=employee, message_id=message_id, helpful=True)
    services.feedback_record(user=employee, message_id=message_id, helpful=False, comment="It is 240 hours, not days")

    feedback = Feedback.objects.get()
    assert not feedback.helpful and feedback.comment == "It is 240 hours, not days"
    assert feedback.message.passages and feedback.message.text


def test_ask_command_prints_sources_then_the_answer(handbook, fake_llm, capsys):
    fake_llm.add_replies(["Up to 240 hours [1]."])

    call_command("ask", "How many leave hours carry over?", "--collection", "Handbook")

    out = capsys.readouterr().out
    assert out.index("[1] Leave policy") < out.index("Up to 240 hours [1].")


def test_ask_command_json_has_answer_citations_and_passages(handbook, fake_llm, capsys):
    fake_llm.add_replies(["Up to 240 hours [1]."])

    call_command("ask", "How many leave hours carry over?", "--json")

    result = json.loads(capsys.readouterr().out)
    assert result["text"] == "Up to 240 hours [1]." and result["answered"] is True
    assert result["citations"][0]["n"] == 1 and result["passages"][0]["title"] == "Leave policy"


def test_ask_command_names_an_unknown_collection(handbook):
    with pytest.raises(CommandError, match="No collection named Finance"):
        call_command("ask", "How many leave hours carry over?", "--collection", "Finance")


def test_ask_command_fails_with_the_reason_when_the_model_is_down(handbook, fake_llm, capsys):
    fake_llm.fail_with(503)

    with pytest.raises(CommandError):
        call_command("ask", "How many leave hours carry over?")

    assert "[1] Leave policy" in capsys.readouterr().out


def test_warming_up_has_the_model_read_the_fixed_start_of_every_answer_prompt(fake_llm):
    from chat.prompting import build_messages, prefix_messages

    url = services.model_warm_up()

    (request,) = fake_llm.requests
    assert url == fake_llm.base_url and request["max_tokens"] == 1
    real = build_messages(question="How many leave hours carry over?", passages=[]).messages
    assert request["messages"][: len(prefix_messages())] == real[: len(prefix_messages())]
    assert real[len(prefix_messages())]["content"].startswith(request["messages"][-1]["content"])
