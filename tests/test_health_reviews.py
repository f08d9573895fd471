"""Content health, staleness and ownership: owners and review-by dates set on upload or in the admin, overdue
documents listed to admins and to each owner, and the periodic reminder that emails the lists."""

from datetime import timedelta

import pytest
from bs4 import BeautifulSoup
from django.conf import settings as django_settings
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from health import selectors, services, tasks
from ingestion.services import IncomingFile, documents_upload
from kb.models import Collection, Document
from portal.celery import app as celery_app
from tests.health_flows import admin_client, employee, employee_client  # noqa: F401 - fixtures
from tests.health_flows import page, text

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()
LAST_MONTH = TODAY - timedelta(days=30)
NEXT_WEEK = TODAY + timedelta(days=7)
NEXT_YEAR = TODAY + timedelta(days=365)


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user("olga", password="pw-olga-12345", email="olga@example.com")


def add(collection, name: str, *, owner=None, review_by=None) -> Document:
    """Upload one text file through documents_upload (processing is not needed for reviews)."""
    documents_upload(
        collection=collection, files=[IncomingFile(name=name, data=f"{name} says something worth checking.".encode())],
        owner=owner, review_by=review_by,
    )
    return Document.objects.get(collection=collection, source_path=name)


def rows(soup, heading: str) -> list[str]:
    """Row headers (document titles) of the table following the h2 `heading`."""
    h2 = soup.find("h2", string=lambda s: s and heading in s)
    table = h2.find_next(lambda tag: tag.name == "table" or "card" in tag.get("class", []))
    return [th.get_text(strip=True) for th in table.select("tbody th")] if table.name == "table" else []


# --- setting owner and date ---


def test_documents_upload_sets_the_owner_and_review_date_on_every_document_it_records(collection, owner):
    result = documents_upload(
        collection=collection, files=[IncomingFile(name="a.txt", data=b"Alpha."), IncomingFile(name="b.txt", data=b"Beta.")],
        owner=owner, review_by=NEXT_YEAR,
    )

    assert len(result.queued) == 2
    assert {(d.owner, d.review_by) for d in Document.objects.all()} == {(owner, NEXT_YEAR)}


def test_an_upload_without_owner_or_date_keeps_those_a_document_already_had(collection, owner):
    documents_upload(collection=collection, files=[IncomingFile(name="a.txt", data=b"Alpha.")], owner=owner, review_by=NEXT_YEAR)
    documents_upload(collection=collection, files=[IncomingFile(name="a.txt", data=b"Alpha, second version.")])

    document = Document.objects.get()
    assert document.version == 2 and document.owner == owner and document.review_by == NEXT_YEAR


def test_the_upload_page_takes_an_owner_and_a_review_date(admin_client, collection, owner):
    response = admin_client.post(
        reverse("ingestion:upload"),
        {"collection": collection.pk, "owner": "olga", "review_by": NEXT_WEEK.isoformat(),
         "files": [SimpleUploadedFile("travel.txt", b"Trains under four hours, always.")]},
        headers={"Accept": "application/json"},
    )

    assert response.status_code == 200 and response.json()["queued"] == 1
    document = Document.objects.get()
    assert document.owner == owner and document.review_by == NEXT_WEEK


def test_the_upload_page_offers_the_owner_and_date_fields(admin_client, owner):
    soup = BeautifulSoup(admin_client.get(reverse("ingestion:upload")).content, "html.parser")

    assert soup.find("label", string="Owner") and soup.find("input", attrs={"name": "owner"})
    assert soup.find("input", attrs={"name": "review_by", "type": "date"})
    assert "olga" in [o["value"] for o in soup.select("#owner-choices option")]


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"owner": "nobody-here"}, "No active user is called 'nobody-here'"), ({"review_by": "soon"}, "'soon' is not a date")],
)
def test_an_unknown_owner_or_a_bad_date_is_refused_with_a_reason_and_nothing_is_uploaded(admin_client, collection, fields, message):
    response = admin_client.post(
        reverse("ingestion:upload"),
        {"collection": collection.pk, **fields, "files": [SimpleUploadedFile("travel.txt", b"Trains.")]},
        headers={"Accept": "application/json"},
    )

    assert response.status_code == 400 and message in response.json()["error"]
    assert not Document.objects.exists()


def test_the_admin_upload_form_sets_owner_and_review_date(db, django_user_model, collection, owner):
    superuser = django_user_model.objects.create_superuser("root", password="pw-root-12345")
    client = Client()
    client.force_login(superuser)

    response = client.post(
        reverse("admin:kb_document_upload"),
        {"collection": collection.pk, "owner": owner.pk, "review_by": NEXT_WEEK.isoformat(),
         "files": [SimpleUploadedFile("hr.txt", b"HR answers within two days.")]},
    )

    assert response.status_code == 302
    document = Document.objects.get()
    assert document.owner == owner and document.review_by == NEXT_WEEK


def test_an_admin_changes_owner_and_review_date_on_the_document_and_sees_them_in_the_list(db, django_user_model, collection, owner):
    superuser = django_user_model.objects.create_superuser("root", password="pw-root-12345")
    client = Client()
    client.force_login(superuser)
    document = add(collection, "hr.txt")
    change_url = reverse("admin:kb_document_change", args=[document.pk])
    form = BeautifulSoup(client.get(change_url).content, "html.parser")
    assert form.find("select", attrs={"name": "owner"}) and form.find("input", attrs={"name": "review_by"})

    response = client.post(change_url, {"title": document.title, "collection": collection.pk, "owner": owner.pk,
                                        "review_by": NEXT_WEEK.isoformat()})

    assert response.status_code == 302, response.content[:2000]
    document.refresh_from_db()
    assert document.owner == owner and document.review_by == NEXT_WEEK
    listing = text(BeautifulSoup(client.get(reverse("admin:kb_document_changelist")).content, "html.parser"))
    assert "olga" in listing and "Owner" in listing and "Review by" in listing


# --- what admins and owners see ---


def test_overdue_documents_are_listed_longest_overdue_first_and_upcoming_ones_apart(admin_client, collection, owner):
    add(collection, "old.txt", owner=owner, review_by=LAST_MONTH)
    add(collection, "stale.txt", review_by=TODAY - timedelta(days=1))
    add(collection, "soon.txt", owner=owner, review_by=NEXT_WEEK)
    add(collection, "later.txt", owner=owner, review_by=NEXT_YEAR)

    soup = page(admin_client, "health:staleness")

    assert rows(soup, "Overdue") == ["old", "stale"]
    assert rows(soup, "Due in the next") == ["soon"]
    overdue_text = text(soup.find("h2", string="Overdue for review").find_next("table"))
    assert "olga" in overdue_text and "nobody" in overdue_text and "overdue" in overdue_text


def test_the_overview_counts_overdue_documents(admin_client, collection):
    add(collection, "old.txt", review_by=LAST_MONTH)

    assert "1 document overdue for review" in text(page(admin_client, "health:overview"))


def test_an_owner_who_is_not_staff_sees_their_own_documents_to_review_and_nobody_elses(collection, owner, employee):
    add(collection, "mine-old.txt", owner=owner, review_by=LAST_MONTH)
    add(collection, "mine-later.txt", owner=owner, review_by=NEXT_YEAR)
    add(collection, "theirs.txt", owner=employee, review_by=LAST_MONTH)
    client = Client()
    client.force_login(owner)

    soup = page(client, "health:mine")

    assert rows(soup, "Overdue") == ["mine old"]
    assert rows(soup, "Your other documents") == ["mine later"]
    assert "theirs" not in text(soup)
    assert soup.find("nav", attrs={"aria-label": "Main"}).find("a", string="My reviews")
    assert client.get(reverse("health:staleness")).status_code == 302  # the admins' list stays for staff


def test_people_who_own_nothing_get_no_reviews_link(employee_client, collection):
    soup = BeautifulSoup(employee_client.get(reverse("chat:page")).content, "html.parser")

    assert not soup.find("a", string="My reviews") and not soup.find("a", string="Content health")


def test_staff_see_the_content_health_link_in_the_navigation(admin_client):
    soup = BeautifulSoup(admin_client.get(reverse("chat:page")).content, "html.parser")

    assert soup.find("nav", attrs={"aria-label": "Main"}).find("a", string="Content health")["href"] == reverse("health:overview")


def test_documents_in_a_collection_the_owner_may_not_read_are_not_listed_to_them(owner):
    board = Collection.objects.create(name="Board", access=Collection.Access.GROUPS)
    add(board, "minutes.txt", owner=owner, review_by=LAST_MONTH)
    client = Client()
    client.force_login(owner)

    assert "minutes" not in text(page(client, "health:mine"))


# --- the periodic reminder ---


def test_the_reminder_task_is_scheduled_with_celery_beat():
    schedule = {entry["task"]: entry for entry in django_settings.CELERY_BEAT_SCHEDULE.values()}

    assert "health.review_reminders" in schedule
    assert "health.review_reminders" in celery_app.tasks


def test_the_reminder_emails_each_owner_the_list_of_their_overdue_documents(collection, owner, employee, settings):
    settings.PORTAL_URL = "https://lantern.example.com"
    add(collection, "old.txt", owner=owner, review_by=LAST_MONTH)
    add(collection, "older.txt", owner=owner, review_by=LAST_MONTH - timedelta(days=3))
    add(collection, "fine.txt", owner=owner, review_by=NEXT_YEAR)
    add(collection, "erins.txt", owner=employee, review_by=LAST_MONTH)

    lists = tasks.review_reminders.apply().get()

    assert lists == {"olga": ["older", "old"], "erin": ["erins"]}
    sent = {m.to[0]: m for m in mail.outbox}
    assert set(sent) == {"olga@example.com", "erin@example.com"}
    olga = sent["olga@example.com"]
    assert olga.subject == "Lantern: 2 documents overdue for review"
    assert "- older (Handbook)" in olga.body and "- old (Handbook)" in olga.body and "fine" not in olga.body
    assert "https://lantern.example.com/health/my-reviews/" in olga.body


def test_without_an_email_backend_the_lists_are_prepared_and_nothing_is_sent(collection, owner, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
    add(collection, "old.txt", owner=owner, review_by=LAST_MONTH)

    run = services.review_reminders_send()

    assert run.lists == {"olga": ["old"]} and run.emailed == [] and run.not_emailed == ["olga"]
    assert mail.outbox == []


def test_an_owner_without_an_email_address_is_skipped_and_the_others_are_mailed(collection, owner, employee):
    employee.email = ""
    employee.save()
    add(collection, "old.txt", owner=owner, review_by=LAST_MONTH)
    add(collection, "erins.txt", owner=employee, review_by=LAST_MONTH)

    run = services.review_reminders_send()

    assert run.emailed == ["olga"] and run.not_emailed == ["erin"]
    assert [m.to for m in mail.outbox] == [["olga@example.com"]]


def test_inactive_owners_get_no_reminder(collection, owner):
    owner.is_active = False
    owner.save()
    add(collection, "old.txt", owner=owner, review_by=LAST_MONTH)

    assert tasks.review_reminders.apply().get() == {}
    assert mail.outbox == []


def test_a_document_due_today_is_overdue_from_tomorrow(collection, owner):
    add(collection, "today.txt", owner=owner, review_by=TODAY)

    assert selectors.review_reminders(today=TODAY) == []
    assert [d.title for d in selectors.review_reminders(today=TODAY + timedelta(days=1))[0].overdue] == ["today"]
