"""Real Celery workers: a worker process fed through the configured broker (Redis in the services run, the
filesystem transport in the embedded run), killed mid-document and restarted; and the in-process embedded worker."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from ingestion.worker import EmbeddedWorker
from kb import vectorstore
from kb.models import Document

from .helpers import chunk_point_ids, markdown, point_ids, upload, wait_for

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_worker(**extra_env) -> subprocess.Popen:
    vectorstore.close()  # the embedded store is locked to one process: the worker's
    env = {**os.environ, "DATABASE_URL": database_url(), "LANTERN_DATA_DIR": str(settings.DATA_DIR), **extra_env}
    command = [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool", "threads", "--concurrency", "1",
               "-Q", settings.CELERY_TASK_DEFAULT_QUEUE, "-l", "INFO", "--without-mingle", "--without-gossip"]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def long_document(paragraphs: int) -> bytes:
    sections = [(f"Section {i}", " ".join(f"Rule {i}.{j} applies to every team in region {j}." for j in range(25))) for i in range(paragraphs)]
    return markdown("Operations manual", *sections)


def status_of(document: Document) -> Document:
    return Document.objects.get(pk=document.pk)


def test_a_worker_process_indexes_an_upload_sent_through_the_broker(collection):
    worker = start_worker()
    try:
        [document] = upload(collection, ("leave.md", markdown("Leave", ("Carry over", "Up to 240 hours carry over.")))).queued
        done = wait_for(lambda: status_of(document).status == Document.Status.INDEXED and status_of(document), timeout=180, message="indexed")
    finally:
        stop(worker)
    assert done.chunk_count > 0
    assert point_ids(done) == chunk_point_ids(done)


def test_a_worker_killed_mid_document_leaves_it_to_be_redone_on_restart_without_duplicates(collection):
    worker = start_worker(EMBEDDING_BATCH_SIZE="2")
    try:
        [document] = upload(collection, ("manual.md", long_document(60))).queued
        wait_for(lambda: status_of(document).status == Document.Status.EMBEDDING and status_of(document).progress > 0.2,
                 timeout=240, interval=0.1, message="embedding under way")
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        assert status_of(document).status == Document.Status.EMBEDDING  # abandoned mid-way
        worker = start_worker()
        done = wait_for(lambda: status_of(document).status == Document.Status.INDEXED and status_of(document), timeout=300, message="redone")
    finally:
        stop(worker)
    assert point_ids(done) == chunk_point_ids(done)
    assert vectorstore.points_count(document_id=done.pk) == done.chunk_count


def test_the_embedded_worker_processes_uploads_inside_the_portal_process(collection):
    with EmbeddedWorker():
        [document] = upload(collection, ("travel.txt", b"Book travel at least 14 days ahead.")).queued
        done = wait_for(lambda: status_of(document).status == Document.Status.INDEXED and status_of(document), timeout=120, message="indexed")
    assert point_ids(done) == chunk_point_ids(done)


def test_the_embedded_worker_redoes_a_document_its_predecessor_abandoned_mid_way(collection):
    [document] = upload(collection, ("travel.txt", b"Book travel at least 14 days ahead.")).queued
    # As a portal killed mid-embedding leaves it: claimed by a run that no longer exists, its task gone.
    Document.objects.filter(pk=document.pk).update(status=Document.Status.EMBEDDING, claim_token="dead-run", progress=0.15)
    queue_folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_in", "/nonexistent"))
    for message in queue_folder.glob("*.msg") if not settings.REDIS_URL else ():
        message.unlink()

    with EmbeddedWorker():
        done = wait_for(lambda: status_of(document).status == Document.Status.INDEXED and status_of(document), timeout=120, message="indexed")
    assert point_ids(done) == chunk_point_ids(done)


@pytest.mark.skipif(bool(settings.REDIS_URL), reason="the filesystem broker is the embedded mode's; Redis has no message files")
def test_a_broken_message_file_does_not_stop_the_embedded_worker_for_good(collection):
    queue_folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
    with EmbeddedWorker() as worker:
        # What kombu's own writer could leave for a reader: an empty message file. Celery gives up on it.
        (queue_folder / f"1_broken.{settings.CELERY_TASK_DEFAULT_QUEUE}.msg").write_bytes(b"")
        wait_for(lambda: worker.restarts >= 1, timeout=60, message="the worker to be replaced")
        [document] = upload(collection, ("travel.txt", b"Book travel at least 14 days ahead.")).queued
        wait_for(lambda: status_of(document).status == Document.Status.INDEXED, timeout=120, message="indexed")
    assert worker.alive is False


def test_manage_py_ingest_processes_a_folder_and_reports_failures(collection, tmp_path, capsys):
    (tmp_path / "hr").mkdir()
    (tmp_path / "hr" / "leave.md").write_bytes(markdown("Leave", ("Carry over", "Up to 240 hours carry over.")))
    (tmp_path / "notes.txt").write_text("Parking is free for all staff on weekends.")
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(Exception) as failure:
        call_command("ingest", str(tmp_path), collection="Handbook")
    assert "1 document(s) failed" in str(failure.value)
    documents = {d.source_path: d for d in Document.objects.all()}
    assert documents["hr/leave.md"].status == Document.Status.INDEXED
    assert documents["notes.txt"].status == Document.Status.INDEXED
    assert documents["empty.txt"].status == Document.Status.FAILED
    assert "empty.txt" in capsys.readouterr().err
    (tmp_path / "empty.txt").unlink()
    call_command("ingest", str(tmp_path), collection="Handbook")
    assert "2 file(s) unchanged since their last upload; skipped." in capsys.readouterr().out
