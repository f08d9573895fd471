"""Content health, feedback: every rated answer with its question, answer, citations and comment, filtered."""

from datetime import timedelta

import pytest
from django.utils import timezone

from health import views
from kb.models import Collection
from tests.health_flows import EXPENSES, LEAVE, ask, page, rate, text
from tests.health_flows import admin_client, employee, employee_client, fake_llm_reply, handbook  # noqa: F401 - fixtures
from tests.helpers import upload_and_process

pytestmark = pytest.mark.django_db

LEAVE_Q = "How many leave hours carry over?"
MEALS_Q = "How much are meals on business trips reimbursed?"


@pytest.fixture
def rated(handbook, fake_llm, employee, employee_client):
    """One answer rated helpful (leave, cites the leave policy), one not helpful with a comment (meals)."""
    fake_llm.add_replies("You can carry over 240 annual leave hours [1].", "Meals are reimbursed up to 45 euros per day [1].")
    leave = ask(employee, LEAVE_Q)
    meals = ask(employee, MEALS_Q)
    rate(employee_client, leave, helpful=True)
    rate(employee_client, meals, helpful=False, comment="Is that per day or per trip abroad?")
    return {"leave": leave, "meals": meals}


def articles(soup):
    return soup.select("article.rated")


def questions(soup) -> list[str]:
    return [a.h3.get_text(strip=True) for a in articles(soup)]


def test_each_rated_answer_shows_question_answer_citation_rating_and_comment(rated, admin_client):
    soup = page(admin_client, "health:feedback")

    by_question = {a.h3.get_text(strip=True): a for a in articles(soup)}
    assert set(by_question) == {LEAVE_Q, MEALS_Q}
    meals = by_question[MEALS_Q]
    assert "Not helpful" in text(meals) and "by erin" in text(meals)
    assert "Meals are reimbursed up to 45 euros per day [1]." in text(meals)
    assert "Is that per day or per trip abroad?" in text(meals.select_one("blockquote.comment"))
    cited = meals.select(".health-passages li")
    assert len(cited) == 1 and "Expenses policy" in text(cited[0]) and "45 euros per day" in text(cited[0])
    assert "Helpful" in text(by_question[LEAVE_Q]) and "Leave policy" in text(by_question[LEAVE_Q].select_one(".health-passages"))


def test_the_newest_rating_comes_first(rated, admin_client):
    assert questions(page(admin_client, "health:feedback")) == [MEALS_Q, LEAVE_Q]


def test_filtering_by_rating_shows_only_that_rating(rated, admin_client):
    assert questions(page(admin_client, "health:feedback", rating="not_helpful")) == [MEALS_Q]
    assert questions(page(admin_client, "health:feedback", rating="helpful")) == [LEAVE_Q]


def test_filtering_by_document_keeps_the_answers_given_its_passages(rated, admin_client):
    from kb.models import Document

    expenses = Document.objects.get(title="Expenses policy")
    soup = page(admin_client, "health:feedback", document=expenses.pk)

    assert MEALS_Q in questions(soup) and LEAVE_Q not in questions(soup)


def test_filtering_by_collection_keeps_that_collections_answers(rated, fake_llm, employee, employee_client, admin_client):
    finance = Collection.objects.create(name="Finance")
    upload_and_process(finance, ("budget.md", b"# Budget\n\nThe travel budget for 2027 is 80000 euros.\n"))
    fake_llm.add_replies("It is 80000 euros [1].")
    budget = ask(employee, "What is the travel budget for 2027?")
    rate(employee_client, budget, helpful=True)

    soup = page(admin_client, "health:feedback", collection=finance.pk)

    assert questions(soup) == ["What is the travel budget for 2027?"]


def test_filtering_by_date_includes_both_ends_and_excludes_other_days(rated, admin_client):
    today = timezone.localdate()

    assert len(articles(page(admin_client, "health:feedback", since=today.isoformat(), until=today.isoformat()))) == 2
    assert articles(page(admin_client, "health:feedback", since=(today + timedelta(days=1)).isoformat())) == []
    assert articles(page(admin_client, "health:feedback", until=(today - timedelta(days=1)).isoformat())) == []


def test_a_date_that_is_not_a_date_is_explained_and_the_other_filters_still_apply(rated, admin_client):
    response = admin_client.get("/health/feedback/", {"since": "last tuesday", "rating": "helpful"})

    assert response.status_code == 400
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(response.content, "html.parser")
    assert "'last tuesday' is not a date (YYYY-MM-DD)" in text(soup.select_one("[role=alert]"))
    assert questions(soup) == [LEAVE_Q]


def test_ratings_are_paginated(rated, admin_client, monkeypatch):
    monkeypatch.setattr(views, "FEEDBACK_PER_PAGE", 1)

    first = page(admin_client, "health:feedback", rating="")
    second = page(admin_client, "health:feedback", page=2)

    assert questions(first) == [MEALS_Q] and questions(second) == [LEAVE_Q]
    assert "Page 1 of 2" in text(first.select_one("nav.pager"))
    assert first.select_one("nav.pager a")["href"].endswith("page=2")


def test_an_answer_drawn_from_a_collection_the_admin_may_not_read_is_withheld(fake_llm, employee, employee_client, admin_client):
    board = Collection.objects.create(name="Board", access=Collection.Access.GROUPS)
    upload_and_process(board, ("board.md", b"# Board minutes\n\nThe CEO salary rises to 400000 euros next year.\n"))
    employee.is_superuser = True
    employee.save()
    fake_llm.add_replies("It rises to 400000 euros [1].")
    rate(employee_client, ask(employee, "How much will the CEO salary rise?"), helpful=False, comment="Old figure")

    soup = page(admin_client, "health:feedback")

    assert questions(soup) == ["How much will the CEO salary rise?"]
    assert "Old figure" in text(soup) and "400000" not in text(soup)
    assert "drew on a collection you cannot read" in text(soup)


@pytest.mark.urls("tests.test_health_gaps")  # the site's URLs with a golden questions route standing in
def test_an_answer_rated_not_helpful_links_to_making_it_a_golden_question(rated, admin_client):
    from django.urls import reverse

    soup = page(admin_client, "health:feedback")

    links = {a.find_parent("article").h3.get_text(strip=True): a["href"] for a in soup.find_all("a", string="Make a golden question")}
    assert links == {MEALS_Q: f"{reverse('health:golden_new')}?message={rated['meals']}"}
