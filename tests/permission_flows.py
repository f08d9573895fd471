"""What the permission tests of every surface share: an everyone collection and an HR-only one, a member of HR and an
employee outside it, and the check that nothing of the HR collection shows."""

import pytest
from django.contrib.auth.models import Group

from kb.models import Collection

from .helpers import markdown, upload_and_process

SALARIES = markdown(
    "Salary bands 2026",
    ("Engineering", "Band 7 engineers earn between 91,500 and 104,000 euros a year, reviewed every April."),
)
LEAVE = markdown(
    "Leave policy",
    ("Annual leave", "Employees get 25 days of paid annual leave per year; unused days carry over until March."),
)
SALARY_QUESTION = "How much do band 7 engineers earn a year?"
SECRETS = ("Salary bands", "91,500", "HR salaries", "salaries.md")


@pytest.fixture
def hr_group(db):
    return Group.objects.create(name="HR")


@pytest.fixture
def library(db, hr_group):
    """An everyone collection with the leave policy and an HR-only collection with the salary bands."""
    handbook = Collection.objects.create(name="Handbook")
    hr = Collection.objects.create(name="HR salaries", access=Collection.Access.GROUPS)
    hr.groups.add(hr_group)
    (leave,) = upload_and_process(handbook, ("leave.md", LEAVE))
    (salaries,) = upload_and_process(hr, ("salaries.md", SALARIES))
    return {"handbook": handbook, "hr": hr, "leave": leave, "salaries": salaries}


@pytest.fixture
def erin(django_user_model):
    """An employee outside HR."""
    return django_user_model.objects.create_user("erin", password="pw-erin-12345")


@pytest.fixture
def hana(django_user_model, hr_group):
    """An employee in HR."""
    user = django_user_model.objects.create_user("hana", password="pw-hana-12345")
    user.groups.add(hr_group)
    return user


@pytest.fixture
def fake_llm_reply():
    # The reply a model would give if it had seen the salaries: it must never reach a user outside HR.
    return "Band 7 engineers earn between 91,500 and 104,000 euros a year [1]."


def assert_no_trace(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked"
