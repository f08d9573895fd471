"""Finding the passages that answer a question: hybrid search, the score floor, scope, and per-document limits."""

import pytest

from kb.models import Collection
from kb.selectors import passages_search
from tests.helpers import markdown, upload_and_process

pytestmark = pytest.mark.django_db

LEAVE = markdown(
    "Leave policy",
    ("Annual leave", "You can carry over a maximum of 240 annual leave hours into the next leave year. "
     "Hours above the cap are forfeited at the end of the year."),
    ("Sick leave", "Sick leave accrues at four hours per pay period and has no carry-over limit."),
)
TRAVEL = markdown(
    "Travel",
    ("Booking", "Book flights through the travel agency at least two weeks ahead. Economy class is the default."),
    ("Per diem", "Meals and incidental expenses are reimbursed at the federal per diem rate for the destination."),
)
SECURITY = markdown(
    "Laptop security",
    ("Encryption", "Every laptop must use full-disk encryption. Form SF-1199A registers a device with IT."),
)


@pytest.fixture
def handbook(collection):
    upload_and_process(collection, ("leave.md", LEAVE), ("travel.md", TRAVEL), ("security.md", SECURITY))
    return collection


def test_a_question_in_other_words_finds_the_passage_that_answers_it(handbook):
    passages = passages_search(user=None, query="How many vacation hours roll over to next year?")

    assert passages[0].title == "Leave policy"
    assert "240 annual leave hours" in passages[0].text
    assert passages[0].heading_path == ("Leave policy", "Annual leave")
    assert [p.n for p in passages] == list(range(1, len(passages) + 1))


def test_an_exact_code_is_found_by_the_lexical_side(handbook):
    passages = passages_search(user=None, query="SF-1199A", mode="sparse", floor=0.0)

    assert passages and passages[0].title == "Laptop security"


def test_hybrid_search_puts_the_exact_code_first(handbook):
    passages = passages_search(user=None, query="what is SF-1199A for", floor=0.0)

    assert passages[0].title == "Laptop security"


def test_a_question_the_documents_do_not_cover_finds_nothing(handbook):
    assert passages_search(user=None, query="Which football club won the 1998 World Cup final?") == []


def test_search_stays_within_the_collections_asked_for(handbook):
    other = Collection.objects.create(name="Engineering")
    upload_and_process(other, ("leave-eng.md", markdown("Engineering leave", ("Leave", "Engineers carry over 80 hours."))))

    passages = passages_search(user=None, query="How many leave hours carry over?", collection_ids=[other.pk])

    assert {p.collection_id for p in passages} == {other.pk}


def test_an_inactive_account_reads_nothing(handbook, django_user_model):
    former = django_user_model.objects.create_user("bob", password="pw-bob-12345", is_active=False)

    assert passages_search(user=former, query="How many leave hours carry over?") == []


def test_a_long_document_gives_at_most_two_separate_passages(collection, settings):
    sections = [(f"Rule {i}", f"Rule {i} of the expense policy: receipts over {i}0 dollars need a manager's approval. "
                 + "Filler sentence about expenses and receipts. " * 30) for i in range(1, 9)]
    upload_and_process(collection, ("expenses.md", markdown("Expense policy", *sections)))

    passages = passages_search(user=None, query="Do receipts need a manager's approval?", k=6)

    assert 1 <= len(passages) <= settings.SEARCH_MAX_PER_DOCUMENT


def test_neighbouring_chunks_of_one_document_merge_into_one_passage(collection):
    story = " ".join(f"Step {i}: the onboarding buddy checks the laptop, the badge and the accounts." for i in range(60))
    [document] = upload_and_process(collection, ("onboarding.md", markdown("Onboarding", ("Buddy checklist", story))))
    assert document.chunk_count >= 3

    passages = passages_search(user=None, query="What does the onboarding buddy check?", k=5)

    merged = [p for p in passages if len(p.chunk_ids) > 1]
    assert merged, "adjacent hits should be merged"
    ordinals = sorted(document.chunks.filter(pk__in=merged[0].chunk_ids).values_list("ordinal", flat=True))
    assert ordinals == list(range(ordinals[0], ordinals[0] + len(ordinals)))
    assert merged[0].text.count("Step 1:") <= 1  # the overlap between chunks appears once
