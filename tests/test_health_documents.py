"""Content health, documents: how often each document was cited, its helpful rate, when last; those never cited."""

import pytest

from tests.health_flows import ask, page, rate, text
from tests.health_flows import admin_client, employee, employee_client, fake_llm_reply, handbook  # noqa: F401 - fixtures
from tests.helpers import upload_and_process

pytestmark = pytest.mark.django_db


def usage_rows(soup) -> dict[str, list[str]]:
    return {
        row.th.get_text(strip=True): [text(td) for td in row.find_all("td")]
        for row in soup.select("#usage tbody tr")
    }


def test_a_cited_document_shows_its_citations_helpful_rate_and_last_citation(
    handbook, fake_llm, employee, employee_client, admin_client, django_user_model
):
    fake_llm.add_replies(*["You can carry over 240 annual leave hours [1]."] * 3)
    first, second, third = (ask(employee, "How many leave hours carry over?") for _ in range(3))
    rate(employee_client, first, helpful=True)
    rate(employee_client, second, helpful=False)
    rate(employee_client, third, helpful=True)

    rows = usage_rows(page(admin_client, "health:documents"))

    collection, cited, given, rate_cell, last = rows["Leave policy"]
    assert collection == "Handbook" and cited == "3" and given == "3"
    assert rate_cell == "67% (2 of 3)"
    from django.utils import timezone

    assert last == timezone.localdate().strftime("%-d %b %Y")


def test_an_answer_without_a_citation_counts_as_given_but_not_cited(handbook, fake_llm, employee, admin_client):
    fake_llm.add_replies("Leave carries over, within limits.")
    ask(employee, "How many leave hours carry over?")

    rows = usage_rows(page(admin_client, "health:documents"))

    assert rows["Leave policy"][1:3] == ["0", "1"]
    assert rows["Leave policy"][3] == "not rated" and rows["Leave policy"][4] == "never"


def test_documents_no_answer_has_cited_are_listed_as_never_cited(handbook, fake_llm, employee, admin_client):
    fake_llm.add_replies("You can carry over 240 annual leave hours [1].")
    ask(employee, "How many leave hours carry over?")

    soup = page(admin_client, "health:documents")

    never = [li.strong.get_text(strip=True) for li in soup.select(".never-cited li")]
    assert never == ["Expenses policy"]
    assert "Leave policy" in usage_rows(soup)


def test_a_document_that_failed_to_index_is_not_called_never_cited(collection, admin_client):
    upload_and_process(collection, ("empty.txt", b""))

    soup = page(admin_client, "health:documents")

    assert soup.select(".never-cited li") == [] and "Every indexed document has been cited" in text(soup)
