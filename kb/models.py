"""What the knowledge base is: collections of documents, cut into chunks that live in Qdrant."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.text import slugify

POINT_NAMESPACE = uuid.UUID("8f0b7f4e-6a55-4d0c-9f43-2d1c1f6a7b21")


class Collection(models.Model):
    """A set of documents that share one reading rule: everyone signed in, or members of chosen groups."""

    class Access(models.TextChoices):
        EVERYONE = "everyone", "Everyone signed in"
        GROUPS = "groups", "Only members of the chosen groups"

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    access = models.CharField(max_length=16, choices=Access.choices, default=Access.EVERYONE)
    groups = models.ManyToManyField(
        "auth.Group", blank=True, related_name="readable_collections",
        help_text="Who may read this collection when access is limited to groups.",
    )
    public = models.BooleanField(
        "public", default=False,
        help_text="Anonymous visitors may read it through a chat widget whose key allows anonymous use.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = slugify(self.name)[:200] or uuid.uuid4().hex[:12]
        super().save(*args, **kwargs)


class UploadBatch(models.Model):
    """Files sent together (one upload, one zip, one `manage.py ingest`): the unit of overall progress and ETA."""

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="batches")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    label = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.label or f"Upload {self.pk}"


class Document(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        PARSING = "parsing", "Parsing"
        CHUNKING = "chunking", "Chunking"
        EMBEDDING = "embedding", "Embedding"
        INDEXED = "indexed", "Indexed"
        FAILED = "failed", "Failed"

    ACTIVE_STATUSES = (Status.PARSING, Status.CHUNKING, Status.EMBEDDING)
    PENDING_STATUSES = (Status.QUEUED, *ACTIVE_STATUSES)

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="documents")
    batch = models.ForeignKey(UploadBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="documents")
    title = models.CharField(max_length=500)
    # The name the file was uploaded under (a path inside a zip or below an ingested folder). A new upload with the
    # same source path in the same collection is a new version of this document.
    source_path = models.CharField(max_length=1000)
    file = models.FileField(upload_to="documents/", max_length=1000, blank=True)
    sha256 = models.CharField(max_length=64, db_index=True)
    kind = models.CharField("detected type", max_length=16, blank=True)
    size_bytes = models.BigIntegerField(default=0)
    page_count = models.PositiveIntegerField(null=True, blank=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    # Who answers for the content, and when it should next be checked (content health lists overdue documents).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_documents"
    )
    review_by = models.DateField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    # The version whose chunks are in the index and answer questions (0: none yet).
    indexed_version = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress = models.FloatField(default=0.0)
    error = models.TextField(blank=True)
    extracted_text = models.TextField(blank=True)
    chunk_count = models.PositiveIntegerField(default=0)
    # Which task run owns the document now, and when it last reported; a stale claim is taken over on recovery.
    claim_token = models.CharField(max_length=64, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    processing_started_at = models.DateTimeField(null=True, blank=True)
    indexed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["collection", "source_path"], name="unique_source_path_per_collection")
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_pending(self) -> bool:
        return self.status in self.PENDING_STATUSES

    def point_id(self, *, version: int, ordinal: int) -> str:
        """Deterministic Qdrant point id: a rerun of the same version overwrites instead of duplicating."""
        return str(uuid.uuid5(POINT_NAMESPACE, f"{self.pk}:{version}:{ordinal}"))


class Chunk(models.Model):
    """A passage of the document's indexed version; its vectors live in Qdrant under `point_id`."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    ordinal = models.PositiveIntegerField()
    text = models.TextField()
    page_start = models.PositiveIntegerField(null=True, blank=True)
    page_end = models.PositiveIntegerField(null=True, blank=True)
    heading_path = models.JSONField(default=list, blank=True)
    char_start = models.PositiveIntegerField(default=0)
    char_end = models.PositiveIntegerField(default=0)
    token_count = models.PositiveIntegerField(default=0)
    point_id = models.UUIDField(unique=True)

    class Meta:
        ordering = ["document_id", "ordinal"]
        constraints = [models.UniqueConstraint(fields=["document", "ordinal"], name="unique_chunk_ordinal")]

    def __str__(self) -> str:
        return f"{self.document} #{self.ordinal}"

    @property
    def heading(self) -> str:
        return " › ".join(self.heading_path)
