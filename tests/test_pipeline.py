"""The ingestion pipeline and document lifecycle, run on real files through the real services and vector store."""

import pytest

from ingestion import pipeline
from ingestion.services import document_retry, documents_recover_stalled
from kb import services as kb_services
from kb import vectorstore
from kb.models import Chunk, Document

from .filemakers import zip_of
from .helpers import chunk_point_ids, markdown, point_ids, process, upload, upload_and_process

LEAVE = markdown(
    "Leave policy",
    ("Annual leave", "You can carry over a maximum of 240 annual leave hours into the next leave year."),
    ("Sick leave", "Sick leave accrues at four hours per pay period and never expires."),
)


def test_an_uploaded_markdown_file_is_indexed_with_matching_chunks_and_points(collection):
    [document] = upload_and_process(collection, ("policies/leave.md", LEAVE))
    assert document.status == Document.Status.INDEXED
    assert document.progress == 1.0
    assert document.kind == "markdown"
    assert document.title == "Leave policy"
    assert document.chunk_count == document.chunks.count() > 0
    assert point_ids(document) == chunk_point_ids(document)
    chunk = document.chunks.first()
    assert "240 annual leave hours" in document.extracted_text
    assert document.extracted_text[chunk.char_start : chunk.char_end] == chunk.text


def test_reuploading_the_same_bytes_is_recognised_and_not_processed_again(collection):
    [document] = upload_and_process(collection, ("leave.md", LEAVE))
    again = upload(collection, ("copy-of-leave.md", LEAVE))
    assert again.queued == [] and again.unchanged == [document]
    assert Document.objects.count() == 1


def test_a_new_version_replaces_its_chunks_without_leaving_old_points(collection):
    [v1] = upload_and_process(collection, ("leave.md", LEAVE))
    old_points = point_ids(v1)
    changed = LEAVE.replace(b"240 annual", b"200 annual")
    [v2] = upload_and_process(collection, ("leave.md", changed))
    assert v2.pk == v1.pk and v2.version == 2 and v2.indexed_version == 2
    assert point_ids(v2) == chunk_point_ids(v2)
    assert not (old_points & point_ids(v2))
    assert "200 annual" in v2.extracted_text and "240 annual" not in v2.extracted_text
    assert vectorstore.points_count(document_id=v2.pk) == v2.chunk_count


def test_readers_see_exactly_one_version_at_every_step_of_a_replacement(collection, monkeypatch):
    """Search hits resolve through Chunk rows: at no step do both versions (or neither) resolve."""
    [document] = upload_and_process(collection, ("leave.md", LEAVE))
    seen = []

    def resolvable() -> set[int]:
        rows = {str(p): v for p, v in Chunk.objects.filter(document=document).values_list("point_id", "document__indexed_version")}
        return {rows[p] for p in point_ids(document) if p in rows}

    for name in ("points_upsert", "points_delete"):
        original = getattr(vectorstore, name)

        def spy(*args, _original=original, **kwargs):
            seen.append(resolvable())
            result = _original(*args, **kwargs)
            seen.append(resolvable())
            return result

        monkeypatch.setattr(vectorstore, name, spy)
    upload_and_process(collection, ("leave.md", LEAVE.replace(b"240", b"180")))
    assert seen == [{1}, {1}, {2}, {2}]


def test_one_bad_file_fails_alone_with_a_reason_and_the_rest_of_the_batch_is_indexed(collection):
    result = upload(
        collection,
        ("good.md", LEAVE),
        ("empty.txt", b""),
        ("broken.pdf", b"%PDF-1.7\n garbage that is not a pdf"),
        ("photo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64),
    )
    documents = {d.source_path: d for d in process(*result.queued)}
    assert documents["good.md"].status == Document.Status.INDEXED
    for name in ("empty.txt", "broken.pdf", "photo.png"):
        failed = documents[name]
        assert failed.status == Document.Status.FAILED, name
        assert name in failed.error
        assert failed.chunks.count() == 0 and point_ids(failed) == set()


def test_a_file_over_the_size_limit_is_refused_without_being_stored(collection, settings):
    settings.MAX_UPLOAD_MB = 1
    result = upload(collection, ("huge.txt", b"a" * (1024 * 1024 + 1)), ("small.md", LEAVE))
    [refused] = result.rejected
    assert refused.status == Document.Status.FAILED
    assert "larger than the 1 MB limit" in refused.error
    assert not refused.file
    assert [d.source_path for d in result.queued] == ["small.md"]


def test_a_zip_of_a_folder_becomes_one_document_per_file_with_its_path(collection):
    archive = zip_of({"hr/leave.md": LEAVE, "hr/travel.txt": b"Book travel two weeks ahead.", "__MACOSX/._x": b"junk"})
    result = upload(collection, ("handbook.zip", archive))
    assert sorted(d.source_path for d in result.queued) == ["hr/leave.md", "hr/travel.txt"]
    assert all(d.status == Document.Status.INDEXED for d in process(*result.queued))


def test_a_zip_entry_that_escapes_its_folder_is_refused_and_the_others_are_kept(collection):
    archive = zip_of({"../../etc/cron.d/evil": b"* * * * * root rm -rf /", "ok/readme.txt": b"Welcome aboard."})
    result = upload(collection, ("upload.zip", archive))
    [refused] = result.rejected
    assert "unsafe path" in refused.error
    assert [d.source_path for d in result.queued] == ["ok/readme.txt"]


def test_a_zip_bomb_is_refused_as_a_whole(collection):
    archive = zip_of({"bomb.txt": b"0" * (50 * 1024 * 1024)})
    result = upload(collection, ("bomb.zip", archive))
    assert result.queued == []
    [refused] = result.rejected
    assert "zip bomb" in refused.error


def test_deleting_a_document_removes_its_points_file_and_chunks(collection):
    [document] = upload_and_process(collection, ("leave.md", LEAVE))
    storage, name = document.file.storage, document.file.name
    kb_services.document_delete(document=document)
    assert vectorstore.points_count(document_id=document.pk) == 0
    assert not storage.exists(name)
    assert Chunk.objects.count() == 0


def test_deleting_a_collection_removes_every_vector_and_file_it_held(collection):
    documents = upload_and_process(collection, ("a.md", LEAVE), ("b.txt", b"Parking is free for staff."))
    files = [(d.file.storage, d.file.name) for d in documents]
    kb_services.collection_delete(collection=collection)
    assert vectorstore.points_count() == 0
    assert not any(storage.exists(name) for storage, name in files)
    assert Document.objects.count() == 0


def test_an_admin_can_retry_a_failed_document_and_it_is_indexed_once_the_cause_is_gone(collection, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("parser crashed")

    monkeypatch.setattr(pipeline, "parse", broken)
    [document] = upload_and_process(collection, ("leave.md", LEAVE))
    assert document.status == Document.Status.FAILED and "internal error" in document.error
    monkeypatch.undo()
    assert document_retry(document=document)
    [document] = process(document, token="retry-run")
    assert document.status == Document.Status.INDEXED


def test_a_run_interrupted_mid_way_is_redone_without_duplicate_points(collection, monkeypatch):
    result = upload(collection, ("leave.md", LEAVE))
    [document] = result.queued

    def die_after_upsert(p, *, token):
        vectorstore.points_upsert(
            [vectorstore.PointDraft(document.point_id(version=p.version, ordinal=0), p.vectors[0], pipeline.embedding.sparse_document_vector("x"), {"document_id": document.pk, "collection_id": collection.pk, "version": p.version})]
        )
        raise KeyboardInterrupt  # the worker process dies here

    monkeypatch.setattr(pipeline, "document_index", die_after_upsert)
    with pytest.raises(KeyboardInterrupt):
        process(document, token="dead-run")
    monkeypatch.undo()
    assert Document.objects.get(pk=document.pk).status == Document.Status.EMBEDDING
    from datetime import timedelta

    assert documents_recover_stalled(stale_after=timedelta(0)) == [document.pk]
    [document] = process(document, token="recovery-run")
    assert document.status == Document.Status.INDEXED
    assert point_ids(document) == chunk_point_ids(document)
    assert vectorstore.points_count(document_id=document.pk) == document.chunk_count


def test_a_live_run_keeps_its_document_when_another_task_for_it_arrives(collection):
    [document] = upload(collection, ("leave.md", LEAVE)).queued
    assert pipeline.document_claim(document_id=document.pk, token="first") is not None
    assert pipeline.document_claim(document_id=document.pk, token="second") is None
    assert pipeline.document_claim(document_id=document.pk, token="first") is not None  # redelivery of the same task
