from django.urls import path

from . import views

app_name = "kb"

urlpatterns = [
    path("documents/", views.documents_page, name="documents"),
    path("documents/status.json", views.documents_status, name="documents_status"),
    path("documents/<int:pk>/retry", views.document_retry_view, name="document_retry"),
    path("documents/<int:pk>/delete", views.document_delete_view, name="document_delete"),
    path("documents/<int:pk>/file", views.document_file_view, name="document_file"),
    path("passages/<int:chunk_id>/", views.passage_page, name="passage"),
]
