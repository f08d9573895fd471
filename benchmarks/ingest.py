"""Ingestion throughput against its physical limit, the embedding model's own encode rate.

    python benchmarks/ingest.py ../shared/eval/handbook/corpus
    python benchmarks/ingest.py ../shared/eval/scifact/corpus.jsonl --limit 500

What it measures, in one process, in a fresh data dir, with the embedding model loaded beforehand (as in a running
worker):
  pipeline    wall time from `documents_upload` (files stored, tasks sent through the configured broker) until the
              in-process Celery worker has indexed every document: parse, chunk, embed, sparse vectors, vector store
              upsert, Chunk rows.
  raw encode  `SentenceTransformer.encode` alone on exactly the texts the pipeline embedded (recorded as it ran), in
              one call, with the same batch size and normalisation, in the same process with the same torch threads;
              once before the pipeline (texts from parsing and chunking the corpus beforehand, checked afterwards to be
              the same texts) and once after, so that a change in the machine's load during the run shows.
  breakdown   the time the pipeline spent inside the model and outside it, and the word pieces the model computed,
              padding included, in the pipeline's encode calls, in one model.encode call (which batches texts sorted
              by characters) and at least (all texts sorted by word pieces): the work each way of batching costs.
Target: pipeline chunks/s >= 80% of raw encode chunks/s. Other processes skew every figure (on 2 cores, a busy
neighbour halves any of them), so the load average is printed: compare runs made on an idle machine.
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


def timed_encode(model, texts: list[str], batch_size: int) -> float:
    started = time.perf_counter()
    model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    return time.perf_counter() - started


def expected_texts(files) -> list[str]:
    """The texts the pipeline will embed, from parsing and chunking the corpus as `document_prepare` does."""
    from ingestion.chunking import chunk_document
    from ingestion.parsers import parse
    from ingestion.services import title_from_name
    from ingestion.types import IngestionError

    texts = []
    for file in files:
        try:
            parsed = parse(file.data, filename=file.name)
        except IngestionError:
            continue
        title = file.title or title_from_name(file.name)
        if parsed.title and parsed.title.strip() and not file.title:
            title = parsed.title.strip()[:500]
        texts += [d.embed_text for d in chunk_document(parsed, title=title).drafts]
    return texts


def computed_word_pieces(calls: list[list[str]], batch_size: int, *, by_word_pieces: bool = False) -> int:
    """Word pieces the model computes for these encode calls, padding included.

    SentenceTransformer.encode sorts each call's texts by characters and pads each batch to its longest text.
    """
    from ingestion import embedding

    limit = embedding.max_sequence_tokens()
    total = 0
    for texts in calls:
        lengths = [min(len(e.ids), limit) for e in embedding.tokenizer().encode_batch(sorted(texts, key=len, reverse=True))]
        if by_word_pieces:
            lengths.sort(reverse=True)
        total += sum(len(batch) * max(batch) for batch in (lengths[i : i + batch_size] for i in range(0, len(lengths), batch_size)))
    return total


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
    batch_size = settings.EMBEDDING_BATCH_SIZE
    expected = expected_texts(files)
    collection = collection_create(name="benchmark")
    load_before = os.getloadavg()[0]
    raw_before_seconds = timed_encode(model, expected, batch_size)
    with EmbeddedWorker(), EncodeRecorder(embedding) as recorder:
        started = time.perf_counter()
        documents_upload(collection=collection, files=files)
        upload_seconds = time.perf_counter() - started
        while Document.objects.filter(status__in=Document.PENDING_STATUSES).exists():
            time.sleep(0.1)
        pipeline_seconds = time.perf_counter() - started
    raw_after_seconds = timed_encode(model, recorder.texts, batch_size)
    load_after = os.getloadavg()[0]
    same_texts = sorted(expected) == sorted(recorder.texts)
    raw_seconds = (raw_before_seconds + raw_after_seconds) / 2 if same_texts else raw_after_seconds
    pieces_pipeline = computed_word_pieces(recorder.calls, batch_size)
    pieces_one_call = computed_word_pieces([recorder.texts], batch_size)
    pieces_least = computed_word_pieces([recorder.texts], batch_size, by_word_pieces=True)

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
        ("raw model.encode chunks/s (same texts, one call)", f"{raw_rate:.2f}  " + (
            f"(before {embedded / raw_before_seconds:.2f}, after {embedded / raw_after_seconds:.2f})" if same_texts
            else "(after only: the texts chunked beforehand differ from those embedded)")),
        ("pipeline / raw encode", f"{pipeline_rate / raw_rate:.0%}  (target >= 80%)"),
        ("breakdown: pipeline time inside the model", f"{recorder.seconds:.1f} s in {len(recorder.calls)} encode calls"),
        ("breakdown: pipeline time outside the model", f"{pipeline_seconds - recorder.seconds:.1f} s"),
        ("breakdown: word pieces computed: pipeline / one call / least", f"{pieces_pipeline} / {pieces_one_call} / "
         f"{pieces_least}  (pipeline {pieces_pipeline / pieces_one_call - 1:+.0%} against one call)"),
        ("batch size / torch threads / CPU cores", f"{batch_size} / {torch.get_num_threads()} / {os.cpu_count()}"),
        ("tasks of / worker threads", f"{settings.INGEST_BATCH_DOCUMENTS} documents / {settings.WORKER_CONCURRENCY}"),
        # The benchmark alone keeps every core busy: a load above that means other processes took a share.
        ("load average before / after", f"{load_before:.1f} / {load_after:.1f}"
         + ("  (busy machine: figures skewed)" if max(load_before, load_after) > (os.cpu_count() or 1) + 1 else "")),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
