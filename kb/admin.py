from django.contrib import admin, messages
from django.db.models import Count
from django.utils.html import format_html

from ingestion.services import document_retry

from . import services
from .models import Chunk, Collection, Document


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "document_count", "created_at")
    search_fields = ("name", "description")
    prepopulated_fields = {"slug": ("name",)}

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_documents=Count("documents"))

    @admin.display(description="Documents", ordering="n_documents")
    def document_count(self, obj):
        return obj.n_documents

    def delete_model(self, request, obj):
        services.collection_delete(collection=obj)

    def delete_queryset(self, request, queryset):
        for collection in queryset:
            services.collection_delete(collection=collection)


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ("title", "collection", "kind", "status", "progress_percent", "version", "chunk_count", "updated_at")
    list_filter = ("status", "kind", "collection")
    search_fields = ("title", "source_path", "sha256")
    readonly_fields = (
        "source_path", "file", "sha256", "kind", "size_bytes", "page_count", "uploaded_by", "version",
        "indexed_version", "status", "progress", "error", "chunk_count", "batch", "indexed_at", "created_at", "updated_at",
    )
    exclude = ("extracted_text", "claim_token", "heartbeat_at", "processing_started_at")
    actions = ["retry_failed"]
    change_list_template = "admin/kb/document/change_list.html"

    def has_add_permission(self, request):
        return False  # documents come in through the upload page, which this admin links to

    @admin.display(description="Progress")
    def progress_percent(self, obj):
        return format_html("{}%", round(obj.progress * 100))

    @admin.action(description="Retry the selected failed documents")
    def retry_failed(self, request, queryset):
        retried = sum(document_retry(document=d) for d in queryset)
        messages.info(request, f"{retried} document(s) queued again.")

    def delete_model(self, request, obj):
        services.document_delete(document=obj)

    def delete_queryset(self, request, queryset):
        for document in queryset:
            services.document_delete(document=document)


@admin.register(Chunk)
class ChunkAdmin(admin.ModelAdmin):
    list_display = ("document", "ordinal", "page_start", "heading", "token_count")
    search_fields = ("text", "document__title")
    list_select_related = ("document",)
    readonly_fields = [f.name for f in Chunk._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
