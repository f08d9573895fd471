"""Content health overview: questions per day, answered vs unanswered and the helpful rate, drawn with a charting
library the portal serves itself, and the same numbers as tables for screen readers and for no JavaScript."""

import pytest
from django.utils import timezone

from tests.health_flows import ask, page, rate, text
from tests.health_flows import admin_client, employee, employee_client, fake_llm_reply, handbook  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


def table_row(soup, chart: str, day) -> list[str]:
    figure = soup.select_one(f'figure[data-chart="{chart}"]')
    label = day.strftime("%a %-d %b")
    row = next(r for r in figure.select("tbody tr") if r.th.get_text(strip=True) == label)
    return [td.get_text(strip=True) for td in row.find_all("td")]


@pytest.fixture
def todays_questions(handbook, fake_llm, employee, employee_client):
    """Three questions today: two answered (one rated helpful, one not), one nobody could answer."""
    fake_llm.add_replies("You can carry over 240 annual leave hours [1].", "Meals are reimbursed up to 45 euros per day [1].")
    leave = ask(employee, "How many leave hours carry over?")
    meals = ask(employee, "How much are meals on business trips reimbursed?")
    ask(employee, "Which football club won the 1998 World Cup final?")
    rate(employee_client, leave, helpful=True)
    rate(employee_client, meals, helpful=False)


def test_the_numbers_for_today_are_in_the_tables_behind_the_charts(todays_questions, admin_client):
    soup = page(admin_client, "health:overview")
    today = timezone.localdate()

    assert table_row(soup, "questions", today) == ["3", "2", "1"]
    assert table_row(soup, "helpful", today) == ["2", "1", "50%"]
    totals = text(soup.select_one(".health-totals"))
    assert "3 questions" in totals and "2 answered" in totals and "1 unanswered" in totals and "50% helpful" in totals


def test_the_tables_cover_thirty_days_with_zeros_for_quiet_days(todays_questions, admin_client):
    soup = page(admin_client, "health:overview")

    rows = soup.select('figure[data-chart="questions"] tbody tr')
    assert len(rows) == 30
    assert [td.get_text(strip=True) for td in rows[-1].find_all("td")] == ["0", "0", "0"]  # 29 days ago


def test_each_chart_has_a_text_alternative_and_a_captioned_table(admin_client):
    soup = page(admin_client, "health:overview")

    for figure in soup.select("figure.chart"):
        canvas = figure.select_one("canvas")
        assert canvas["role"] == "img" and "table below" in canvas["aria-label"]
        assert figure.select_one("table caption").get_text(strip=True)
        assert figure.select_one("details.chart-table").has_attr("open")  # open until the chart is drawn


def test_the_chart_data_the_script_reads_matches_the_tables(todays_questions, admin_client):
    import json

    soup = page(admin_client, "health:overview")
    data = json.loads(soup.select_one("#health-chart-data").string)

    assert data["days"][-1] == timezone.localdate().isoformat() and len(data["days"]) == 30
    assert (data["questions"][-1], data["answered"][-1], data["unanswered"][-1], data["helpful_percent"][-1]) == (3, 2, 1, 50)
    assert data["helpful_percent"][0] is None  # no rating that day: a gap in the line, not 0%


def test_the_charting_library_is_served_by_the_portal_and_nothing_is_loaded_from_elsewhere(admin_client):
    soup = page(admin_client, "health:overview")

    sources = [s["src"] for s in soup.find_all("script", src=True)] + [link["href"] for link in soup.find_all("link", href=True)]
    assert all(src.startswith("/") and not src.startswith("//") for src in sources), sources
    chart_js = next(src for src in sources if "vendor/chartjs" in src)
    response = admin_client.get(chart_js)
    assert response.status_code == 200
    assert b"Chart.js v4.6.1" in b"".join(response.streaming_content if response.streaming else [response.content])
    assert admin_client.get("/static/vendor/chartjs/LICENSE.md").status_code == 200


def test_the_overview_links_to_every_panel(admin_client):
    nav = page(admin_client, "health:overview").find("nav", attrs={"aria-label": "Content health"})

    names = [a.get_text(strip=True) for a in nav.find_all("a")]
    assert names[:5] == ["Overview", "Knowledge gaps", "Feedback", "Documents", "Reviews"]
    assert nav.find("a", attrs={"aria-current": "page"}).get_text(strip=True) == "Overview"
