from django.urls import path

from . import duplicates_views, golden_views, views

app_name = "health"

# The duplicates panel and the golden questions (health:duplicates, health:golden, health:golden_new) add their
# routes below; the page links to them only once those names exist.
urlpatterns = [
    path("", views.overview, name="overview"),
    path("gaps/", views.gaps, name="gaps"),
    path("feedback/", views.feedback, name="feedback"),
    path("documents/", views.documents, name="documents"),
    path("reviews/", views.staleness, name="staleness"),
    path("my-reviews/", views.mine, name="mine"),
    # Duplicates and conflicts; golden questions
    path("duplicates/", duplicates_views.duplicates_page, name="duplicates"),
    path("duplicates/<str:kind>/<int:pair_id>/dismiss", duplicates_views.pair_dismiss_view, name="pair_dismiss"),
    path("duplicates/documents/<int:document_id>/retire", duplicates_views.document_retire_view, name="document_retire"),
    path("golden/", golden_views.golden_page, name="golden"),
    path("golden/new/", golden_views.golden_new, name="golden_new"),
    path("golden/picker/", golden_views.golden_picker, name="golden_picker"),
    path("golden/<int:golden_id>/delete", golden_views.golden_delete, name="golden_delete"),
    path("golden/runs/", golden_views.golden_run_start, name="golden_run_start"),
    path("golden/runs/<int:run_id>/", golden_views.golden_run_detail, name="golden_run"),
    path("golden/runs/<int:run_id>/status.json", golden_views.golden_run_status, name="golden_run_status"),
    path("golden/export.jsonl", golden_views.golden_export, name="golden_export"),
    path("golden/import", golden_views.golden_import, name="golden_import"),
]
