"""Ingestion throughput against its physical limit, the embedding model's own encode rate.

    python benchmarks/ingest.py ../shared/eval/handbook/corpus
    python benchmarks/ingest.py ../shared/eval/scifact/corpus.jsonl --limit 500

What it measures, in one process, in a fresh data dir, with the embedding model loaded beforehand (as in a running
worker):
  pipeline    wall time from `documents_upload` (files stored, tasks sent through the configured broker) until the
              in-process Celery worker has indexed every document: parse, chunk, embed, sparse vectors, vector store
              upsert, Chunk rows.
  raw encode  `SentenceTransformer.encode` alone on exactly the texts the pipeline embedded (recorded as it ran), in
              one call, with the same batch size and normalisation, in the same process with the same torch threads.
  breakdown   the time the pipeline spent inside the model, and the pipeline's own encode calls replayed alone:
              what is left of the gap after the replay is overhead (everything but the model); the replay's distance
              from the raw encode is padding lost to length-sorting each task's texts instead of the whole corpus.
Target: pipeline chunks/s >= 80% of raw encode chunks/s. Other processes skew both figures (on 2 cores, a busy
neighbour halves either), so the load average is printed: compare runs made on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def corpus_files(path: Path, limit: int | None):
    """The corpus as uploads: a folder's files, or a BEIR-style corpus.jsonl (one document per line)."""
    from ingestion.services import IncomingFile

    if path.suffix == ".jsonl":
        with path.open() as handle:
            for i, line in enumerate(handle):
                if limit and i >= limit:
                    return
                record = json.loads(line)
                name = f"{record.get('_id', record.get('id'))}.txt"
                yield IncomingFile(name=name, data=record["text"].encode(), title=record.get("title", ""))
        return
    files = sorted(p for p in path.rglob("*") if p.is_file())[:limit]
    for file in files:
        yield IncomingFile(name=file.relative_to(path).as_posix(), data=file.read_bytes())


class EncodeRecorder:
    """Wraps `embedding.embed_texts` to keep every text the pipeline embeds and the time spent in the model."""

    def __init__(self, embedding):
        self.embedding, self.original = embedding, embedding.embed_texts
        self.calls: list[list[str]] = []
        self.seconds = 0.0

    def __call__(self, texts, **kwargs):
        started = time.perf_counter()
        try:
            return self.original(texts, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started
            self.calls.append(list(texts))

    def __enter__(self):
        self.embedding.embed_texts = self
        return self

    def __exit__(self, *exc):
        self.embedding.embed_texts = self.original

    @property
    def texts(self) -> list[str]:
        return [t for call in self.calls for t in call]


def timed_encode(model, batches: list[list[str]], batch_size: int) -> float:
    started = time.perf_counter()
    for texts in batches:
        model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path, help="a folder of files, or a corpus.jsonl")
    parser.add_argument("--limit", type=int, default=None, help="only the first N files or lines")
    args = parser.parse_args()
    os.environ["LANTERN_DATA_DIR"] = tempfile.mkdtemp(prefix="lantern-bench-")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    import torch
    from django.conf import settings
    from django.core.management import call_command

    from ingestion import embedding
    from ingestion.services import documents_upload
    from ingestion.worker import EmbeddedWorker
    from kb import vectorstore
    from kb.models import Chunk, Document
    from kb.services import collection_create

    call_command("migrate", verbosity=0)
    model = embedding.embedding_model()  # loaded outside the timed part, as a running worker has it loaded already
    embedding.embed_texts(["warm up"])
    vectorstore.client()
    files = list(corpus_files(args.corpus, args.limit))
    collection = collection_create(name="benchmark")
    load_before = os.getloadavg()[0]
    with EmbeddedWorker(), EncodeRecorder(embedding) as recorder:
        started = time.perf_counter()
        documents_upload(collection=collection, files=files)
        upload_seconds = time.perf_counter() - started
        while Document.objects.filter(status__in=Document.PENDING_STATUSES).exists():
            time.sleep(0.1)
        pipeline_seconds = time.perf_counter() - started
    batch_size = settings.EMBEDDING_BATCH_SIZE
    raw_seconds = timed_encode(model, [recorder.texts], batch_size)
    replay_seconds = timed_encode(model, recorder.calls, batch_size)
    load_after = os.getloadavg()[0]

    indexed = Document.objects.filter(status=Document.Status.INDEXED).count()
    failed = Document.objects.filter(status=Document.Status.FAILED).count()
    chunks = Chunk.objects.count()
    embedded = len(recorder.texts)
    pipeline_rate, raw_rate = chunks / pipeline_seconds, embedded / raw_seconds
    rows = [
        ("corpus", str(args.corpus) + (f" (first {args.limit})" if args.limit else "")),
        ("documents indexed / failed", f"{indexed} / {failed}"),
        ("chunks indexed / texts embedded", f"{chunks} / {embedded}"),
        ("pipeline wall time (upload to last indexed)", f"{pipeline_seconds:.1f} s  (upload call {upload_seconds:.1f} s)"),
        ("pipeline documents/s", f"{indexed / pipeline_seconds:.2f}"),
        ("pipeline chunks/s", f"{pipeline_rate:.2f}"),
        ("raw model.encode chunks/s (same texts, one call)", f"{raw_rate:.2f}  ({raw_seconds:.1f} s)"),
        ("pipeline / raw encode", f"{pipeline_rate / raw_rate:.0%}  (target >= 80%)"),
        ("breakdown: pipeline time inside the model", f"{recorder.seconds:.1f} s in {len(recorder.calls)} encode calls"),
        ("breakdown: those calls replayed alone", f"{replay_seconds:.1f} s"),
        ("breakdown: everything but the model", f"{pipeline_seconds - recorder.seconds:.1f} s"),
        ("batch size / torch threads / CPU cores", f"{batch_size} / {torch.get_num_threads()} / {os.cpu_count()}"),
        ("tasks of / worker threads", f"{settings.INGEST_BATCH_DOCUMENTS} documents / {settings.WORKER_CONCURRENCY}"),
        ("load average before / after", f"{load_before:.1f} / {load_after:.1f}"
         + ("  (busy machine: figures skewed)" if max(load_before, load_after) > (os.cpu_count() or 1) * 0.6 else "")),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
