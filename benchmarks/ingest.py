"""Ingestion throughput against the physical limit, the embedding model's own encode rate.

    python benchmarks/ingest.py ../shared/eval/handbook/corpus
    python benchmarks/ingest.py ../shared/eval/scifact/corpus.jsonl --limit 1000

Uploads the corpus through the real path (upload service -> broker -> in-process Celery worker -> parse, chunk,
embed, index) into a fresh data dir, then encodes the very same chunk texts with `model.encode` alone, and prints
both rates. Target: the pipeline reaches at least 80% of the raw encode rate.
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
    from ingestion.services import IncomingFile

    if path.suffix == ".jsonl":
        with path.open() as handle:
            for i, line in enumerate(handle):
                if limit and i >= limit:
                    return
                record = json.loads(line)
                yield IncomingFile(name=f"{record['id']}.txt", data=record["text"].encode(), title=record.get("title", ""))
        return
    files = sorted(p for p in path.rglob("*") if p.is_file())[:limit]
    for file in files:
        yield IncomingFile(name=file.relative_to(path).as_posix(), data=file.read_bytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    os.environ["LANTERN_DATA_DIR"] = tempfile.mkdtemp(prefix="lantern-bench-")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from ingestion import embedding
    from ingestion.chunking import embed_prefix
    from ingestion.services import documents_upload
    from ingestion.worker import EmbeddedWorker
    from kb.models import Chunk, Document
    from kb.services import collection_create

    call_command("migrate", verbosity=0)
    embedding.embedding_model()  # load outside the timed part, as a running worker has it loaded already
    embedding.embed_texts(["warm up"])
    files = list(corpus_files(args.corpus, args.limit))
    collection = collection_create(name="benchmark")
    with EmbeddedWorker():
        started = time.perf_counter()
        documents_upload(collection=collection, files=files)
        while Document.objects.filter(status__in=Document.PENDING_STATUSES).exists():
            time.sleep(0.2)
        pipeline_seconds = time.perf_counter() - started
    indexed = Document.objects.filter(status=Document.Status.INDEXED).count()
    failed = Document.objects.filter(status=Document.Status.FAILED).count()
    chunks = list(Chunk.objects.select_related("document").order_by("document_id", "ordinal"))
    texts = [embed_prefix(c.document.title, tuple(c.heading_path)) + c.text for c in chunks]
    started = time.perf_counter()
    embedding.embedding_model().encode(texts, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
    encode_seconds = time.perf_counter() - started
    pipeline_rate, encode_rate = len(chunks) / pipeline_seconds, len(chunks) / encode_seconds
    rows = [
        ("corpus", str(args.corpus) + (f" (first {args.limit})" if args.limit else "")),
        ("documents indexed / failed", f"{indexed} / {failed}"),
        ("chunks", f"{len(chunks)}"),
        ("pipeline wall time", f"{pipeline_seconds:.1f} s"),
        ("pipeline documents/s", f"{indexed / pipeline_seconds:.2f}"),
        ("pipeline chunks/s", f"{pipeline_rate:.2f}"),
        ("raw model.encode chunks/s (same texts)", f"{encode_rate:.2f}"),
        ("pipeline / raw encode", f"{pipeline_rate / encode_rate:.0%}  (target >= 80%)"),
        ("CPU cores", f"{os.cpu_count()}"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
