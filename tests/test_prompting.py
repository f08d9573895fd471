"""The answer prompt: numbered passages under a token budget, history, the follow-up rewrite, and abstention.

The last test drives the real packaged model with a real prompt (slow)."""

from __future__ import annotations

import re

import pytest

from chat import llm, local_model, prompting
from chat.prompting import NOT_FOUND, build_messages, is_abstention, rewrite_messages
from kb.selectors import Passage

LEAVE = (
    "You may use annual leave for any reason. You can carry over a maximum of 240 annual leave hours from one "
    "leave year to the next. Hours above the cap are forfeited at the end of the leave year."
)
EAP = "The Employee Assistance Program covers six free counseling sessions for you or family members in your household."


def passage(n: int, text: str, *, title: str = "Leave", heading_path: tuple[str, ...] = ("Annual leave",), page=None):
    return Passage(
        n=n, chunk_id=100 + n, chunk_ids=(100 + n,), document_id=n, collection_id=1, title=title,
        heading_path=heading_path, page=page, text=text, score=0.5,
    )


def long_text(sentences: int, *, tag: str = "") -> str:
    rules = (f"Rule {tag}{i} says that form {i} is filed with the office within {i} days." for i in range(sentences))
    return " ".join(rules)


def user_message(prompt) -> str:
    return prompt.messages[-1]["content"]


def estimated_total(messages: list[dict]) -> int:
    # What the model is sent, counted independently of the code under test.
    per_message = sum(llm.estimate_tokens(m["content"]) + prompting.TOKENS_PER_MESSAGE for m in messages)
    return per_message + prompting.TOKENS_FOR_REPLY


# --- Passages and numbering -----------------------------------------------------------------------


def test_the_passages_are_numbered_in_rank_order_as_the_citations_expect():
    found = [passage(4, LEAVE), passage(9, EAP, title="Benefits", heading_path=("EAP",), page=3)]

    prompt = build_messages(question="How many leave hours carry over?", passages=found)

    assert [p.n for p in prompt.passages] == [1, 2]
    assert [p.chunk_id for p in prompt.passages] == [104, 109]
    text = user_message(prompt)
    assert text.index(f"[1] Leave > Annual leave\n{LEAVE}") < text.index(f"[2] Benefits > EAP (page 3)\n{EAP}")
    assert "[4]" not in text and "[9]" not in text


def test_markdown_link_targets_are_left_out_of_the_prompt_and_the_link_words_kept():
    text = "Ask in [HR Links](https://hrlinks.gsa.gov/very/long/path?x=1) or [the page]({% page \"/tools/x/\" %})."

    prompt = build_messages(question="Where?", passages=[passage(1, text)])

    assert prompt.passages[0].text == "Ask in HR Links or the page."
    assert "https://" not in user_message(prompt)


def test_the_question_comes_after_the_passages_and_the_rules_are_in_the_system_prompt():
    prompt = build_messages(question="How many leave hours carry over?", passages=[passage(1, LEAVE)])

    system, user = prompt.messages[0], prompt.messages[-1]
    assert system["role"] == "system" and user["role"] == "user"
    assert NOT_FOUND in system["content"] and "[1]" in system["content"]
    assert "language of the question" in system["content"]
    assert user["content"].index(LEAVE) < user["content"].index("Question: How many leave hours carry over?")


def test_every_prompt_starts_with_the_same_instructions_so_the_server_can_reuse_its_cache():
    first = build_messages(question="How many leave hours carry over?", passages=[passage(1, LEAVE)])
    second = build_messages(question="How many counseling sessions?", passages=[passage(1, EAP)], history=[("a", "b")])

    prefix = prompting.prefix_messages()
    assert first.messages[: len(prefix)] == second.messages[: len(prefix)] == prefix


def test_the_warm_up_request_shares_the_prefix_of_every_answer_prompt():
    prompt = build_messages(question="How many leave hours carry over?", passages=[passage(1, LEAVE)])
    warm_up = prompting.warm_up_messages()

    assert prompt.messages[: len(warm_up) - 1] == warm_up[:-1]
    assert prompt.messages[len(warm_up) - 1]["content"].startswith(warm_up[-1]["content"])


def test_the_example_turns_show_one_cited_answer_and_one_not_found():
    replies = [m["content"] for m in prompting.prefix_messages() if m["role"] == "assistant"]

    assert NOT_FOUND in replies
    assert any(re.search(r"\[\d\]", reply) for reply in replies)


# --- The budget -----------------------------------------------------------------------------------


@pytest.mark.parametrize("budget", [500, 900, 3000])
@pytest.mark.parametrize("sentences", [1, 20, 400])
def test_the_prompt_stays_within_the_budget_however_long_the_passages(settings, budget, sentences):
    settings.PROMPT_TOKEN_BUDGET = budget
    found = [passage(n, long_text(sentences, tag=f"{n}.")) for n in range(1, 6)]

    history = [("Q?", "A [1].")] * 3

    prompt = build_messages(question="Which form is filed within 7 days?", passages=found, history=history)

    assert prompt.prompt_tokens == estimated_total(prompt.messages)
    assert prompt.prompt_tokens <= budget
    assert len(prompt.passages) >= 1


def test_whole_passages_go_in_first_and_the_next_is_cut_at_a_sentence_boundary(settings):
    settings.PROMPT_TOKEN_BUDGET = 900
    settings.PROMPT_PASSAGE_TOKENS = 0  # whole passages, not focused ones
    found = [passage(n, long_text(12, tag=f"{n}.")) for n in range(1, 6)]

    prompt = build_messages(question="Which form?", passages=found)

    whole, last = prompt.passages[:-1], prompt.passages[-1]
    assert len(whole) >= 1
    assert all(p.text == found[p.n - 1].text for p in whole)
    assert found[last.n - 1].text.startswith(last.text) and len(last.text) < len(found[last.n - 1].text)
    assert last.text.endswith("days.")
    assert len(prompt.passages) < len(found)


def test_a_first_passage_longer_than_the_whole_budget_is_cut_rather_than_dropped(settings):
    settings.PROMPT_TOKEN_BUDGET = 500
    settings.PROMPT_PASSAGE_TOKENS = 0
    huge = long_text(300)

    prompt = build_messages(question="Which form?", passages=[passage(1, huge), passage(2, EAP)])

    assert [p.n for p in prompt.passages] == [1]
    assert huge.startswith(prompt.passages[0].text) and prompt.passages[0].text.endswith(".")
    assert prompt.prompt_tokens <= 500


def test_a_budget_too_small_for_the_instructions_still_gets_the_start_of_the_best_passage(settings):
    settings.PROMPT_TOKEN_BUDGET = 100

    prompt = build_messages(question="Which form?", passages=[passage(1, long_text(50)), passage(2, EAP)])

    assert [p.n for p in prompt.passages] == [1]
    assert 0 < llm.estimate_tokens(prompt.passages[0].text) <= prompting.MIN_TRIMMED_PASSAGE_TOKENS


def test_a_passage_with_no_sentence_end_is_cut_at_a_word_and_marked_as_cut(settings):
    settings.PROMPT_TOKEN_BUDGET = 500
    run_on = " ".join(["word"] * 2000)

    prompt = build_messages(question="Which form?", passages=[passage(1, run_on)])

    assert prompt.passages[0].text.endswith("word…")
    assert prompt.prompt_tokens <= 500


def test_a_long_pasted_question_is_shortened_so_the_passages_still_fit(settings):
    settings.PROMPT_TOKEN_BUDGET = 900
    pasted = "Please explain this log: " + "error at line 12 of the parser " * 400

    prompt = build_messages(question=pasted, passages=[passage(1, LEAVE)])

    assert prompt.passages[0].text == LEAVE
    assert "Question: Please explain this log: error" in user_message(prompt)
    assert prompt.prompt_tokens <= 900


def test_the_default_budget_holds_three_typical_chunks_whole(settings):
    # Handbook chunks, compacted, are ~500 characters at the median and ~950 at the 90th percentile.
    found = [passage(n, long_text(16, tag=f"{n}.")[:550]) for n in range(1, 6)]

    prompt = build_messages(question="Which form is filed within 7 days?", passages=found)

    assert [p.text for p in prompt.passages[:3]] == [p.text for p in found[:3]]
    assert prompt.prompt_tokens <= settings.PROMPT_TOKEN_BUDGET


def test_focused_passages_fit_four_typical_chunks_each_around_its_sentence_about_the_question(settings):
    settings.PROMPT_PASSAGE_TOKENS = 110
    found = [passage(n, long_text(16, tag=f"{n}.")[:550]) for n in range(1, 6)]

    prompt = build_messages(question="Which form is filed within 7 days?", passages=found)

    assert len(prompt.passages) >= 4
    assert all("form 7 is filed with the office within 7 days" in p.text for p in prompt.passages[:4])
    assert prompt.prompt_tokens <= settings.PROMPT_TOKEN_BUDGET


def test_a_long_passage_is_focused_on_the_sentences_around_the_one_matching_the_question():
    text = long_text(30)

    focused = prompting.focus_text(text, question="Which form is filed within 17 days?", tokens=60)

    assert "form 17 is filed with the office within 17 days" in focused
    assert focused.startswith("… ") and focused.endswith(" …")
    assert llm.estimate_tokens(focused) <= 60 + 2
    sentences = focused.strip("… ").split(". ")
    assert len(sentences) >= 2  # neighbours come along: an answer often sits next to the matching sentence


def test_a_passage_within_its_share_reaches_the_model_whole():
    assert prompting.focus_text(LEAVE, question="How many hours carry over?", tokens=200) == LEAVE


def test_with_no_sentence_matching_the_question_the_passage_keeps_its_start():
    focused = prompting.focus_text(long_text(30), question="Parking at the office?", tokens=60)

    assert focused.startswith("Rule 0 says") and focused.endswith(" …")


# --- History --------------------------------------------------------------------------------------


def test_recent_turns_come_before_the_question_without_their_old_citation_markers():
    history = [("How many leave hours carry over?", "Up to 240 hours carry over [1][2]. The rest is forfeited [1, 2].")]

    prompt = build_messages(question="And for contractors?", passages=[passage(1, LEAVE)], history=history)

    turns = prompt.messages[len(prompting.prefix_messages()) :]
    assert [m["role"] for m in turns] == ["user", "assistant", "user"]
    assert turns[0]["content"] == "How many leave hours carry over?"
    assert turns[1]["content"] == "Up to 240 hours carry over. The rest is forfeited."
    assert turns[2]["content"].endswith("Question: And for contractors?")


def test_only_the_most_recent_turns_that_fit_are_kept(settings):
    settings.PROMPT_TOKEN_BUDGET = 900
    history = [(f"Question number {i} about leave?", long_text(3, tag=f"{i}.")) for i in range(10)]

    prompt = build_messages(question="And for contractors?", passages=[passage(1, LEAVE)], history=history)

    turns = prompt.messages[len(prompting.prefix_messages()) :]
    asked = [m["content"] for m in turns if m["role"] == "user"][:-1]
    assert 1 <= len(asked) < 10
    assert asked[-1] == "Question number 9 about leave?"
    assert asked == [f"Question number {i} about leave?" for i in range(10 - len(asked), 10)]
    assert prompt.passages[0].text == LEAVE


def test_the_rewrite_prompt_holds_the_last_turns_and_the_follow_up():
    history = [
        ("Where is the office?", "In Denver [1]."),
        ("How many leave hours carry over?", "Up to 240 hours [1]."),
        ("Who approves leave?", "Your supervisor [2]."),
    ]

    messages = rewrite_messages(question="and for contractors?", history=history)

    text = messages[-1]["content"]
    assert messages[0]["role"] == "system" and "standalone" in messages[0]["content"]
    assert "How many leave hours carry over?" in text and "Who approves leave?" in text
    assert "Where is the office?" not in text
    assert "[2]" not in text and "Your supervisor." in text
    assert text.rstrip().endswith("Standalone search query:") and "and for contractors?" in text


# --- Abstention -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        NOT_FOUND,
        "I could not find this in the knowledge base",
        "I couldn't find this in the knowledge base.",
        "I could not find any information about dental plans in the knowledge base.",
        "The passages do not contain information about the dental deductible.",
        "I’m sorry, I couldn’t find the answer in the provided passages.",
        "Ich konnte dies nicht in der Wissensdatenbank finden.",
        "Je n’ai pas trouvé cette information dans la base de connaissances.",
        "No pude encontrar esto en la base de conocimientos.",
        "I could not find this in the knowledge base [1].",
        "I could not find this in the knowledge base. Passage [2] is about parking in general.",
    ],
)
def test_the_not_found_sentence_and_close_variants_are_recognised_as_abstentions(answer):
    assert is_abstention(answer)


@pytest.mark.parametrize(
    "answer",
    [
        "You can carry over up to 240 hours of annual leave [1].",
        "Up to 240 hours carry over [1]. I could not find the exact form in the knowledge base, though.",
        "The passages do not name the form, but the deadline is 45 days [1].",
        "Man kann keine Stunden über 240 hinaus übertragen [1].",
        "No. Private channel content and direct messages can still be published through a FOIA request [1].",
        "",
    ],
)
def test_an_answer_that_answers_is_not_an_abstention(answer):
    assert not is_abstention(answer)


# --- The real packaged model ----------------------------------------------------------------------


@pytest.mark.slow
def test_the_packaged_model_answers_from_a_built_prompt_with_the_fact_and_its_citation(settings, tmp_path):
    """The real GGUF through xllamacpp, with the prompt build_messages makes. The model is the copy assembled once
    in BASE_DIR/data (as tests/test_llm.py does); the server runs for this test's data dir and stops after it."""
    settings.LOCAL_LLM_MODEL_PATH = ""
    settings.DATA_DIR = settings.BASE_DIR / "data"
    real_model = local_model.model_file()
    settings.DATA_DIR = tmp_path
    settings.LOCAL_LLM_MODEL_PATH = str(real_model)
    settings.LLM_BASE_URL = ""
    found = [passage(1, LEAVE), passage(2, EAP, title="Benefits", heading_path=("EAP",))]
    prompt = build_messages(question="How many hours of unused annual leave can I carry over?", passages=found)
    try:
        answer = "".join(llm.stream_chat(prompt.messages, max_tokens=60, temperature=0.0))
    finally:
        local_model.stop_server()

    assert "240" in answer
    assert re.search(r"\[1\]", answer), answer
    assert not is_abstention(answer)
