"""Checking an answer's [n] citations against the passages they point to (real embedding model, no LLM)."""

from __future__ import annotations

import pytest

from chat.citations import SUPPORT_THRESHOLD, check
from kb.selectors import Passage

LEAVE = (
    "You may use annual leave for any reason. You can carry over a maximum of 240 annual leave hours from one "
    "leave year to the next. Hours above the cap are forfeited at the end of the leave year."
)
EAP = "The Employee Assistance Program covers six free counseling sessions for you or family members in your household."
PASSWORDS = "Use KeePassXC as your password manager. You can install KeePassXC from the GSA Self-Service app."


def passage(n: int, text: str, *, title: str = "Handbook", heading_path: tuple[str, ...] = ()) -> Passage:
    return Passage(
        n=n, chunk_id=100 + n, chunk_ids=(100 + n,), document_id=n, collection_id=1, title=title,
        heading_path=heading_path, page=None, text=text, score=0.5,
    )


@pytest.fixture
def passages():
    return [
        passage(1, LEAVE, title="Leave"), passage(2, EAP, title="Benefits"), passage(3, PASSWORDS, title="Passwords")
    ]


def only(report, n):
    return [c for c in report.citations if c.n == n]


# --- Markers --------------------------------------------------------------------------------------


def test_a_citation_to_a_passage_that_does_not_exist_is_removed(passages):
    report = check(answer="You can carry over 240 hours [7]. The rest is forfeited [1].", passages=passages)

    assert report.text == "You can carry over 240 hours. The rest is forfeited [1]."
    assert [c.n for c in report.citations] == [1]


def test_numbers_to_missing_passages_are_dropped_from_a_list_marker_and_adjacent_markers(passages):
    report = check(answer="Up to 240 hours carry over [1, 9][8][1][12] and no more.", passages=passages)

    assert report.text == "Up to 240 hours carry over [1][1] and no more."
    assert [c.n for c in report.citations] == [1]


def test_a_marker_naming_the_passage_in_words_is_kept_as_its_number(passages):
    report = check(answer="Up to 240 hours carry over [Passage 1]. The EAP is free [passage 9].", passages=passages)

    assert report.text == "Up to 240 hours carry over [1]. The EAP is free."
    assert [c.n for c in report.citations] == [1]


def test_a_sentence_citing_two_passages_gets_a_citation_for_each(passages):
    answer = "You can carry over 240 hours and get six free counseling sessions [1][2]."

    report = check(answer=answer, passages=passages)

    assert [c.n for c in report.citations] == [1, 2]
    assert {c.sentence for c in report.citations} == {
        "You can carry over 240 hours and get six free counseling sessions."
    }


def test_a_comma_separated_marker_cites_each_passage(passages):
    report = check(answer="Leave carries over and counseling is free [1, 2].", passages=passages)

    assert [c.n for c in report.citations] == [1, 2]


def test_a_marker_after_the_full_stop_belongs_to_the_sentence_before_it(passages):
    answer = "Install KeePassXC from the Self-Service app. [3] Ask your supervisor otherwise."

    report = check(answer=answer, passages=passages)

    assert [(c.n, c.sentence) for c in report.citations] == [(3, "Install KeePassXC from the Self-Service app.")]


def test_sentences_without_markers_get_no_citation_entry(passages):
    answer = "Good question. Up to 240 hours carry over [1]. Let me know if you need more."

    report = check(answer=answer, passages=passages)

    assert report.text == answer
    assert [c.sentence for c in report.citations] == ["Up to 240 hours carry over."]


def test_list_items_are_checked_one_by_one(passages):
    answer = "You get:\n- up to 240 hours of carry-over [1]\n- six free counseling sessions [2]"

    report = check(answer=answer, passages=passages)

    assert [(c.n, c.sentence, c.verified) for c in report.citations] == [
        (1, "up to 240 hours of carry-over", True),
        (2, "six free counseling sessions", True),
    ]


def test_an_answer_without_passages_loses_all_its_markers():
    report = check(answer="Up to 240 hours carry over [1].", passages=[])

    assert report.text == "Up to 240 hours carry over."
    assert report.citations == [] and report.unverified == []


# --- Support --------------------------------------------------------------------------------------


def test_a_sentence_that_its_cited_passage_supports_is_verified(passages):
    report = check(answer="You can carry over a maximum of 240 annual leave hours [1].", passages=passages)

    [citation] = report.citations
    assert citation.verified and citation.support > 0.8
    assert report.unverified == []


def test_a_paraphrase_in_other_words_is_verified_by_its_meaning(passages):
    # Few shared terms ("unused vacation", "roll over" against "annual leave", "carry over"): the embedding decides.
    answer = "At most 240 hours of unused vacation time can roll over into next year [1]."

    report = check(answer=answer, passages=passages)

    [citation] = report.citations
    assert citation.verified, citation


def test_a_sentence_that_its_cited_passage_does_not_support_is_flagged_unverified(passages):
    report = check(
        answer="You can carry over 240 hours [1]. Parking in the Denver garage is free on weekends [2].",
        passages=passages,
    )

    assert [(c.n, c.verified) for c in report.citations] == [(1, True), (2, False)]
    assert report.citations[1].support < SUPPORT_THRESHOLD
    assert report.unverified == [2]


def test_a_true_sentence_citing_the_wrong_passage_is_flagged_unverified(passages):
    report = check(answer="Install KeePassXC from the GSA Self-Service app [2].", passages=passages)

    assert [(c.n, c.verified) for c in report.citations] == [(2, False)]


def test_a_wrong_number_is_unverified_even_among_the_passages_own_words(passages):
    report = check(answer="You can carry over a maximum of 300 annual leave hours [1].", passages=passages)

    [citation] = report.citations
    assert not citation.verified
    assert report.unverified == [1]


def test_a_bare_yes_with_a_citation_claims_nothing_to_check_and_stays_verified(passages):
    report = check(answer="Yes [1].", passages=passages)

    assert [(c.n, c.verified) for c in report.citations] == [(1, True)]


def test_each_unverified_passage_is_listed_once_in_order_of_citation(passages):
    answer = "Parking is free [3]. Desks are booked daily [2]. Lunch is served at noon [3]. You keep 240 hours [1]."

    report = check(answer=answer, passages=passages)

    assert report.unverified == [3, 2]
