from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Count
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from ingestion.services import UploadResult, document_retry, documents_upload, max_upload_bytes
from ingestion.views import incoming_file

from . import services
from .models import Chunk, Collection, Document
from .selectors import collections_readable

# An upload's message names at most this many refused files; the documents page lists them all.
REFUSALS_IN_MESSAGE = 5


class CollectionAdminForm(forms.ModelForm):
    class Meta:
        model = Collection
        fields = "__all__"

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("access") == Collection.Access.GROUPS and not cleaned.get("groups"):
            self.add_error("groups", "Choose at least one group, or open the collection to everyone signed in.")
        return cleaned


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    form = CollectionAdminForm
    list_display = ("name", "readers", "public", "document_count", "created_at")
    list_filter = ("access", "public", "groups")
    search_fields = ("name", "description")
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("groups",)
    fieldsets = (
        (None, {"fields": ("name", "slug", "description")}),
        (
            "Who may read it",
            {
                "fields": ("access", "groups", "public"),
                "description": "Changes apply to the next question; nothing is re-indexed.",
            },
        ),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_documents=Count("documents")).prefetch_related("groups")

    @admin.display(description="Readers")
    def readers(self, obj):
        if obj.access == Collection.Access.EVERYONE:
            return "Everyone signed in"
        return ", ".join(g.name for g in obj.groups.all()) or "Nobody (no group chosen)"

    @admin.display(description="Documents", ordering="n_documents")
    def document_count(self, obj):
        return obj.n_documents

    def delete_model(self, request, obj):
        services.collection_delete(collection=obj)

    def delete_queryset(self, request, queryset):
        for collection in queryset:
            services.collection_delete(collection=collection)


class MultipleFileInput(forms.FileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files from one input; empty files pass, so the pipeline can refuse them with its own reason."""

    def __init__(self, **kwargs):
        super().__init__(widget=MultipleFileInput(), allow_empty_file=True, **kwargs)

    def clean(self, data, initial=None):
        files = [f for f in (data if isinstance(data, (list, tuple)) else [data]) if f]
        if not files:
            raise forms.ValidationError("Choose at least one file.", code="required")
        single = super().clean
        return [single(f, initial) for f in files]


class DocumentUploadForm(forms.Form):
    collection = forms.ModelChoiceField(Collection.objects.all(), required=False, label="Add to collection")
    new_collection = forms.CharField(
        max_length=200, required=False, label="Or a new collection", help_text="Creates the collection (or reuses one of that name)."
    )
    files = MultipleFileField(label="Files")
    owner = forms.ModelChoiceField(
        get_user_model().objects.filter(is_active=True).order_by("username"), required=False,
        help_text="Who answers for these documents' content (optional).",
    )
    review_by = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}),
        help_text="When the content should next be checked (optional); overdue documents are listed to their owner.",
    )

    def clean(self):
        data = super().clean()
        if not data.get("collection") and not data.get("new_collection", "").strip():
            raise forms.ValidationError("Choose a collection or name a new one.")
        return data


def upload_summary(result: UploadResult) -> str:
    """'12 files queued, 1 refused: x.zip ...' with each refusal's reason, as the admin message."""
    def files(n: int) -> str:
        return f"{n} file{'s' if n != 1 else ''}"

    parts = [f"{files(len(result.queued))} queued"]
    if result.unchanged:
        parts.append(f"{len(result.unchanged)} unchanged (same content already uploaded)")
    if result.rejected:
        reasons = " ".join(d.error for d in result.rejected[:REFUSALS_IN_MESSAGE])
        more = len(result.rejected) - REFUSALS_IN_MESSAGE
        parts.append(f"{len(result.rejected)} refused: {reasons}" + (f" And {more} more." if more > 0 else ""))
    return ", ".join(parts)


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = (
        "title", "collection", "kind", "status", "progress_percent", "version", "chunk_count", "owner", "review_by", "updated_at",
    )
    list_filter = ("status", "kind", ("collection", admin.RelatedOnlyFieldListFilter), "review_by")

    def get_queryset(self, request):
        # Staff manage the documents of collections they may read; a superuser reads every collection.
        readable = collections_readable(user=request.user)
        return super().get_queryset(request).filter(collection_id__in=readable)
    search_fields = ("title", "source_path", "sha256")
    readonly_fields = (
        "source_path", "file", "sha256", "kind", "size_bytes", "page_count", "uploaded_by", "version",
        "indexed_version", "status", "progress", "error", "chunk_count", "batch", "indexed_at", "created_at", "updated_at",
    )
    exclude = ("extracted_text", "claim_token", "heartbeat_at", "processing_started_at")
    actions = ["retry_failed"]
    change_list_template = "admin/kb/document/change_list.html"

    def has_add_permission(self, request):
        return False  # documents come in through the upload form below (or the upload page), never as bare rows

    def get_urls(self):
        upload = path("upload/", self.admin_site.admin_view(self.upload_view), name="kb_document_upload")
        return [upload, *super().get_urls()]

    def upload_view(self, request):
        """Files into a collection through `documents_upload`, then on to the batch's live progress.

        Open to staff, like the upload page it mirrors.
        """
        form = DocumentUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            result = self._upload(request, form.cleaned_data)
            self.message_user(request, upload_summary(result), messages.WARNING if result.rejected else messages.SUCCESS)
            return redirect(reverse("kb:documents") + f"?batch={result.batch.pk}")
        context = {
            **self.admin_site.each_context(request),
            "title": "Upload documents",
            "opts": self.opts,
            "form": form,
            "max_mb": max_upload_bytes() // 2**20,
        }
        return TemplateResponse(request, "admin/kb/document/upload.html", context, status=400 if form.errors else 200)

    @staticmethod
    def _upload(request, data: dict) -> UploadResult:
        name = data["new_collection"].strip()
        collection = services.collection_create(name=name) if name else data["collection"]
        files = data["files"]
        return documents_upload(
            collection=collection, files=[incoming_file(f) for f in files], user=request.user,
            label=f"{len(files)} file(s) by {request.user} in the admin",
            owner=data.get("owner"), review_by=data.get("review_by"),
        )

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

    def get_queryset(self, request):
        readable = collections_readable(user=request.user)
        return super().get_queryset(request).filter(document__collection_id__in=readable)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
