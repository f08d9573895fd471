"""Content health records: what the similarity check found between documents, and the golden questions that judge
whether a change to the content, the chunking or the model made answers better."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class SimilarityCheck(models.Model):
    """The last similarity check of a document: which indexed version it compared with the rest of the index."""

    document = models.OneToOneField("kb.Document", on_delete=models.CASCADE, related_name="similarity_check")
    version = models.PositiveIntegerField()
    chunks = models.PositiveIntegerField(default=0)
    duplicates_found = models.PositiveIntegerField(default=0)
    conflicts_found = models.PositiveIntegerField(default=0)
    checked_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.document} v{self.version}"


class DuplicatePair(models.Model):
    """Two documents most of whose passages have a near-identical passage in the other.

    `document_a` has the smaller id. The pair holds for the versions it was computed on; a new version of either
    document is checked again, which replaces the pair.
    """

    document_a = models.ForeignKey("kb.Document", on_delete=models.CASCADE, related_name="+")
    document_b = models.ForeignKey("kb.Document", on_delete=models.CASCADE, related_name="+")
    version_a = models.PositiveIntegerField()
    version_b = models.PositiveIntegerField()
    # Share of the passages of both documents that have a near-identical passage in the other one (0..1).
    similarity = models.FloatField()
    # The most similar pair of passages, shown side by side.
    chunk_a = models.ForeignKey("kb.Chunk", null=True, on_delete=models.SET_NULL, related_name="+")
    chunk_b = models.ForeignKey("kb.Chunk", null=True, on_delete=models.SET_NULL, related_name="+")
    # Identifies the pair of contents: a dismissal holds as long as neither document changes.
    fingerprint = models.CharField(max_length=64, db_index=True)
    found_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-similarity", "-id"]
        constraints = [models.UniqueConstraint(fields=["document_a", "document_b"], name="unique_duplicate_pair")]

    def __str__(self) -> str:
        return f"{self.document_a} ≈ {self.document_b}"


class ConflictPair(models.Model):
    """Two highly similar passages of different documents that state different numbers, dates or names.

    The passages are Chunk rows: a new version of either document replaces its chunks, and the pair goes with them.
    """

    document_a = models.ForeignKey("kb.Document", on_delete=models.CASCADE, related_name="+")
    document_b = models.ForeignKey("kb.Document", on_delete=models.CASCADE, related_name="+")
    chunk_a = models.ForeignKey("kb.Chunk", on_delete=models.CASCADE, related_name="+")
    chunk_b = models.ForeignKey("kb.Chunk", on_delete=models.CASCADE, related_name="+")
    similarity = models.FloatField()
    # The facts only one side states: [{"kind": "number", "text": "240", "start": 31, "end": 34}, ...]
    facts_a = models.JSONField(default=list)
    facts_b = models.JSONField(default=list)
    # Identifies the two passages' texts: a dismissed conflict stays dismissed while both passages read the same.
    fingerprint = models.CharField(max_length=64, db_index=True)
    found_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-similarity", "-id"]
        constraints = [models.UniqueConstraint(fields=["chunk_a", "chunk_b"], name="unique_conflict_pair")]

    def __str__(self) -> str:
        return f"{self.document_a} ≠ {self.document_b}"


class Dismissal(models.Model):
    """An admin's "not a problem" for a duplicate or a conflict, so it is not shown again while the contents stay."""

    class Kind(models.TextChoices):
        DUPLICATE = "duplicate", "Near-duplicate documents"
        CONFLICT = "conflict", "Conflicting passages"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    fingerprint = models.CharField(max_length=64)
    label = models.CharField(max_length=500, blank=True)
    dismissed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    dismissed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-dismissed_at"]
        constraints = [models.UniqueConstraint(fields=["kind", "fingerprint"], name="unique_dismissal")]

    def __str__(self) -> str:
        return self.label or self.fingerprint


class GoldenQuestion(models.Model):
    """A question with its right source(s) and a reference answer, rerun against the current index and model.

    `sources` keeps what the admin picked: [{"document_id", "source_path", "title", "collection"}]. A source whose
    document was later deleted still counts, and is then missed: the run shows the loss.
    """

    question = models.TextField()
    reference_answer = models.TextField(blank=True, help_text='"NOT_IN_CORPUS": the right answer is "not found".')
    sources = models.JSONField(default=list, blank=True)
    # Verbatim strings from the right passage; a retrieved passage counts only if it contains one (when given).
    evidence = models.JSONField(default=list, blank=True)
    # Where the question is searched; empty: every collection.
    collections = models.ManyToManyField("kb.Collection", blank=True, related_name="+")
    from_unanswered = models.ForeignKey(
        "chat.UnansweredQuestion", null=True, blank=True, on_delete=models.SET_NULL, related_name="golden_questions"
    )
    from_message = models.ForeignKey(
        "chat.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="golden_questions"
    )
    # The dataset's id when imported (kept through export and import).
    external_id = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.question[:80]

    @property
    def document_ids(self) -> list[int]:
        return [int(s["document_id"]) for s in self.sources if s.get("document_id")]


class GoldenRun(models.Model):
    """One rerun of every golden question: its progress while it runs, then its totals."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    k = models.PositiveIntegerField()
    total = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    recall = models.FloatField(null=True, blank=True)
    correct = models.FloatField(null=True, blank=True)
    # What the run ran on, so a change of model or settings is visible next to the numbers.
    model_name = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"Golden run {self.pk}"

    @property
    def progress(self) -> float:
        return self.completed / self.total if self.total else (1.0 if self.status == self.Status.DONE else 0.0)


class GoldenResult(models.Model):
    """How one golden question did in one run."""

    run = models.ForeignKey(GoldenRun, on_delete=models.CASCADE, related_name="results")
    golden = models.ForeignKey(GoldenQuestion, null=True, on_delete=models.SET_NULL, related_name="results")
    question = models.TextField()
    recall = models.FloatField(null=True, blank=True)  # share of the expected documents found in the top k
    rank = models.PositiveIntegerField(null=True, blank=True)  # first expected document's rank among documents
    correct = models.BooleanField(null=True)  # None: no reference answer to compare with
    abstained = models.BooleanField(default=False)
    answer = models.TextField(blank=True)
    retrieved = models.JSONField(default=list, blank=True)  # [{"document_id", "title"}] in rank order
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["run", "golden"], name="unique_golden_result_per_run")]

    def __str__(self) -> str:
        return f"{self.run} · {self.question[:60]}"

    @property
    def found(self) -> bool | None:
        return None if self.recall is None else self.recall > 0
