"""The Celery app. Tasks live in ingestion/tasks.py (and later chat/, kb/); they stay thin."""

import os

from celery import Celery

from portal import broker  # noqa: F401  (registers the embedded broker's transport with kombu)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("lantern")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
