"""Content health, knowledge gaps: what people asked that the documents could not answer, grouped by topic."""

from types import ModuleType

import pytest
from django.urls import include, path, reverse

import health.urls
from kb.models import Collection
from tests.health_flows import ask, page, rate, text
from tests.health_flows import admin_client, employee, employee_client, fake_llm_reply, handbook  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db

PARKING = ["How do I book a parking space at the office?", "Where can I park my car at the office?", "Is there parking for visitors?"]
WIFI = ["What is the wifi password for guests?", "How do guests connect to the wifi?"]


def gap_sections(soup):
    return soup.select("section.gap")


def test_unanswered_questions_on_one_topic_form_one_group_with_its_count_largest_first(handbook, fake_llm, employee, admin_client):
    for question in [WIFI[0], *PARKING, WIFI[1]]:
        ask(employee, question)

    gaps = gap_sections(page(admin_client, "health:gaps"))

    assert len(gaps) == 2
    parking, wifi = gaps
    assert "3 questions" in text(parking) and "2 questions" in text(wifi)
    assert {text(q) for q in parking.select(".gap-questions q")} == set(PARKING)
    assert {text(q) for q in wifi.select(".gap-questions q")} == set(WIFI)


def test_newest_first_puts_the_topic_asked_about_last_on_top(handbook, fake_llm, employee, admin_client):
    for question in [*PARKING, WIFI[0]]:
        ask(employee, question)

    gaps = gap_sections(page(admin_client, "health:gaps", sort="newest"))

    assert [g.h3.get_text(strip=True) for g in gaps] == [WIFI[0], PARKING[-1]]


def test_a_gap_shows_its_dates_and_whether_anything_was_retrieved(handbook, fake_llm, employee, admin_client):
    ask(employee, "Which football club won the 1998 World Cup final?")  # nothing in the handbook comes close

    gap = gap_sections(page(admin_client, "health:gaps"))[0]

    assert gap.select("time")[0]["datetime"] and gap.select("time")[1]["datetime"]
    assert "No passage matched" in text(gap)
    assert "nothing in the documents came close" in text(gap)


def test_a_thumbs_down_answer_is_a_gap_with_the_comment_and_the_passages_it_was_given(
    handbook, fake_llm, employee, employee_client, admin_client
):
    fake_llm.add_replies("Interns carry over 240 hours [1].")
    message_id = ask(employee, "How many leave hours can interns carry over?")
    rate(employee_client, message_id, helpful=False, comment="Interns are not mentioned at all")

    gap = gap_sections(page(admin_client, "health:gaps"))[0]

    assert "How many leave hours can interns carry over?" in text(gap)
    assert "Not helpful" in text(gap) and "Interns are not mentioned at all" in text(gap)
    passages = gap.select(".health-passages li")
    assert any("Leave policy" in text(p) and "240 annual leave hours" in text(p) for p in passages)
    link = passages[0].a["href"]
    assert link.startswith("/passages/") and admin_client.get(link.split("#")[0]).status_code == 200


def test_a_question_both_unanswered_and_rated_down_counts_once(handbook, fake_llm, employee, employee_client, admin_client):
    message_id = ask(employee, "Can I bring my dog to work?")
    rate(employee_client, message_id, helpful=False, comment="I need to know before Monday")

    gaps = gap_sections(page(admin_client, "health:gaps"))

    assert len(gaps) == 1 and "1 question" in text(gaps[0])
    assert "Not helpful" in text(gaps[0]) and "I need to know before Monday" in text(gaps[0])


def test_passages_from_a_collection_the_admin_may_not_read_are_not_shown(fake_llm, employee, admin_client, db):
    secret = Collection.objects.create(name="Board", access=Collection.Access.GROUPS)
    from tests.helpers import markdown, upload_and_process

    upload_and_process(secret, ("board.md", markdown("Board minutes", ("Salaries", "The CEO salary rises to 400000 euros."))))
    employee.is_superuser = True  # the asker may read the board's minutes; the staff reviewer may not
    employee.save()
    ask(employee, "How much will the CEO salary rise?")

    gap = gap_sections(page(admin_client, "health:gaps"))[0]

    assert "How much will the CEO salary rise?" in text(gap)
    assert "400000" not in text(gap) and "Board minutes" not in text(gap)


def test_without_gaps_the_page_says_so(handbook, fake_llm, employee, admin_client):
    fake_llm.add_replies("You can carry over 240 hours [1].")
    ask(employee, "How many leave hours carry over?")

    soup = page(admin_client, "health:gaps")

    assert not gap_sections(soup)
    assert "No gaps" in text(soup)


def _without_golden_questions():
    """The site's URLs with only this page's own health routes, as before golden questions were built."""
    own = [p for p in health.urls.urlpatterns if p.callback.__module__ == "health.views"]
    urls = ModuleType("urls_without_golden_questions")
    urls.urlpatterns = [path("health/", include((own, "health"))), path("", include("portal.urls"))]
    return urls


def test_without_the_golden_questions_page_no_link_to_it_is_offered(handbook, fake_llm, employee, admin_client, settings):
    settings.ROOT_URLCONF = _without_golden_questions()
    ask(employee, PARKING[0])

    soup = page(admin_client, "health:gaps")

    assert PARKING[0] in text(soup) and "Make a golden question" not in text(soup)


# The site's URLs with a health:golden_new route standing in for the golden questions page.
_health_with_golden = (
    [*[p for p in health.urls.urlpatterns if p.name != "golden_new"], path("golden/new/", lambda request: None, name="golden_new")],
    "health",
)
urlpatterns = [path("health/", include(_health_with_golden)), path("", include("portal.urls"))]


@pytest.mark.urls("tests.test_health_gaps")
def test_each_gap_question_links_to_making_it_a_golden_question(handbook, fake_llm, employee, employee_client, admin_client):
    from chat.models import UnansweredQuestion

    ask(employee, PARKING[0])
    fake_llm.add_replies("Interns carry over 240 hours [1].")
    disliked = ask(employee, "How many leave hours can interns carry over?")
    rate(employee_client, disliked, helpful=False)

    links = {a["href"] for a in page(admin_client, "health:gaps").find_all("a", string="Make a golden question")}

    golden_new = reverse("health:golden_new")
    assert links == {f"{golden_new}?unanswered={UnansweredQuestion.objects.get().pk}", f"{golden_new}?message={disliked}"}


def test_employees_who_are_not_staff_are_sent_to_sign_in(employee_client):
    response = employee_client.get(reverse("health:gaps"))

    assert response.status_code == 302 and "login" in response["Location"]
