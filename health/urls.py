from django.urls import path

from . import views

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
]
