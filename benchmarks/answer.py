"""How fast a question is answered on the embedded CPU setup: retrieval at scale, time to sources, and the model.

    .venv/bin/python benchmarks/answer.py [--points 100000] [--queries 100] [--pages 8] [--max-tokens 96] [--no-llm]

Everything runs in a scratch LANTERN_DATA_DIR (SQLite, Qdrant local mode), removed at the end:
 (b) ingests a few real handbook pages through the real pipeline and times `passages_search` (query embedding,
     hybrid search, Chunk lookup, merging) for the handbook questions about them;
 (a) upserts --points synthetic chunks (random normalised 384-d dense vectors; sparse vectors of Zipf-distributed
     term ids with BM25 weights; one Chunk row each, 100 per Document) through kb.vectorstore.points_upsert, then
     times kb.vectorstore.points_search (hybrid, RRF) for --queries synthetic queries, the full passages_search path
     over the same points, and (b)'s real questions again with the synthetic points beside them;
 (c) starts the packaged model (xllamacpp) and times first token and generation speed for build_messages prompts
     made of (b)'s passages: the first question after start-up (nothing cached), other questions (the fixed system
     prompt cached), and a question asked again (whole prompt cached).
Targets on 2 CPU cores: retrieval p50 < 50 ms at 100k chunks; sources < 300 ms; first token < 10 s.
Prints a table and exits 0; never part of the test run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
HANDBOOK = ROOT.parent / "shared" / "eval" / "handbook"
VOCABULARY = 30_000  # distinct sparse term ids
ZIPF_EXPONENT = 1.07  # word frequencies in English text fall off about as 1/rank
TERMS_PER_CHUNK = 90  # term occurrences drawn per synthetic chunk (about a 250-token chunk without stop words)
CHUNKS_PER_DOCUMENT = 100
UPSERT_BATCH = 1_000


@dataclass
class Row:
    what: str
    figure: str
    target: str = ""
    note: str = ""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def ms(seconds: list[float]) -> tuple[float, float]:
    return percentile(seconds, 50) * 1000, percentile(seconds, 95) * 1000


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


# --- (b) a small real corpus ----------------------------------------------------------------------


def handbook_questions(pages: int) -> list[dict]:
    with (HANDBOOK / "questions.jsonl").open() as handle:
        questions = [json.loads(line) for line in handle]
    return [q for q in questions if q["doc_ids"]][:pages]


def ingest_pages(questions: list[dict]):
    from ingestion import pipeline
    from ingestion.services import IncomingFile, documents_upload
    from kb.services import collection_create

    collection = collection_create(name="handbook pages")
    paths = sorted({path for q in questions for path in q["doc_ids"]})
    files = [IncomingFile(name=path, data=(HANDBOOK / "corpus" / path).read_bytes()) for path in paths]
    result = documents_upload(collection=collection, files=files)
    started = time.perf_counter()
    pipeline.documents_process(document_ids=[d.pk for d in result.queued], token="benchmark")
    return collection, len(files), time.perf_counter() - started


def time_sources(questions: list[dict], collection_id: int, *, repeats: int = 3,
                 max_seconds: float = float("inf")) -> tuple[list[float], dict]:
    """Seconds per passages_search call (the query embedded each time); and the passages found per question."""
    from kb.selectors import passages_search

    found, seconds, started = {}, [], time.perf_counter()
    for _ in range(repeats):
        for q in questions:
            seconds.append(timed(lambda: found.__setitem__(
                q["id"], passages_search(user=None, query=q["question"], collection_ids=[collection_id])
            )))
            if time.perf_counter() - started > max_seconds:
                return seconds, found
    return seconds, found


# --- (a) synthetic points at scale ----------------------------------------------------------------


class Synthetic:
    def __init__(self, seed: int = 7) -> None:
        import numpy as np

        self.np = np
        self.rng = np.random.default_rng(seed)
        ranks = np.arange(1, VOCABULARY + 1)
        weights = 1.0 / ranks**ZIPF_EXPONENT
        self.term_p = weights / weights.sum()

    def dense(self, count: int):
        vectors = self.rng.standard_normal((count, 384)).astype(self.np.float32)
        return vectors / self.np.linalg.norm(vectors, axis=1, keepdims=True)

    def sparse_document(self):
        from ingestion.embedding import BM25_AVG_TERMS, BM25_B, BM25_K1
        from ingestion.types import SparseVector

        drawn = self.rng.choice(VOCABULARY, size=TERMS_PER_CHUNK, p=self.term_p)
        ids, counts = self.np.unique(drawn, return_counts=True)
        norm = 1 - BM25_B + BM25_B * (counts.sum() / BM25_AVG_TERMS)
        values = counts * (BM25_K1 + 1) / (counts + BM25_K1 * norm)
        return SparseVector(indices=ids.tolist(), values=values.tolist())

    def sparse_query(self):
        from ingestion.types import SparseVector

        # A question's content words: drawn from the same distribution, minus the 100 most frequent ids.
        drawn = self.rng.choice(VOCABULARY, size=12, p=self.term_p)
        ids = sorted({int(t) for t in drawn if t >= 100})[:6] or [int(self.rng.integers(100, VOCABULARY))]
        return SparseVector(indices=ids, values=[1.0] * len(ids))


def add_synthetic_chunks(points: int, synthetic: Synthetic) -> tuple[int, float, float]:
    """Document and Chunk rows plus their points; returns (collection id, seconds for rows, seconds for upsert)."""
    from kb import vectorstore
    from kb.models import Chunk, Document
    from kb.services import collection_create

    collection = collection_create(name="synthetic")
    started = time.perf_counter()
    documents = Document.objects.bulk_create(
        Document(collection=collection, title=f"Synthetic {d}", source_path=f"synthetic/{d}.txt", sha256=f"{d:064d}",
                 status=Document.Status.INDEXED, indexed_version=1)
        for d in range((points + CHUNKS_PER_DOCUMENT - 1) // CHUNKS_PER_DOCUMENT)
    )
    point_ids = [uuid.uuid4() for _ in range(points)]
    Chunk.objects.bulk_create(
        (
            Chunk(document=documents[i // CHUNKS_PER_DOCUMENT], ordinal=i % CHUNKS_PER_DOCUMENT, point_id=point_ids[i],
                  text=f"Synthetic chunk {i}.", heading_path=[])
            for i in range(points)
        ),
        batch_size=5_000,
    )
    rows_s = time.perf_counter() - started
    started = time.perf_counter()
    for start in range(0, points, UPSERT_BATCH):
        end = min(points, start + UPSERT_BATCH)
        dense = synthetic.dense(end - start)
        vectorstore.points_upsert([
            vectorstore.PointDraft(
                point_id=str(point_ids[i]),
                dense=dense[i - start],
                sparse=synthetic.sparse_document(),
                payload={"document_id": documents[i // CHUNKS_PER_DOCUMENT].pk, "collection_id": collection.pk,
                         "version": 1, "ordinal": i % CHUNKS_PER_DOCUMENT, "page": None},
            )
            for i in range(start, end)
        ])
        print(f"\r  upserted {end:,}/{points:,} synthetic points", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return collection.pk, rows_s, time.perf_counter() - started


def time_capped(calls, *, max_seconds: float) -> list[float]:
    """Seconds per call, stopping early once `max_seconds` have gone by (a slow store would take hours)."""
    seconds, started = [], time.perf_counter()
    for call in calls:
        seconds.append(timed(call))
        if time.perf_counter() - started > max_seconds:
            break
    return seconds


def time_points_search(queries: int, synthetic: Synthetic, collection_ids: list[int], *, max_seconds: float):
    from django.conf import settings

    from kb import vectorstore

    dense = synthetic.dense(queries)

    def query(i: int, sparse):
        return lambda: vectorstore.points_search(
            dense=dense[i].tolist(), sparse=sparse, collection_ids=collection_ids, limit=20,
            prefetch_limit=settings.SEARCH_PREFETCH,
        )

    return time_capped((query(i, synthetic.sparse_query()) for i in range(queries)), max_seconds=max_seconds)


def time_passages_search(queries: list[str], collection_ids: list[int], *, max_seconds: float) -> list[float]:
    from kb.selectors import passages_search

    # floor -1: every synthetic hit counts (random vectors are ~0 cosine to a real question), so the Chunk lookup
    # and passage merging run on a full result list.
    def query(text: str):
        return lambda: passages_search(user=None, query=text, collection_ids=collection_ids, floor=-1.0)

    return time_capped((query(q) for q in queries), max_seconds=max_seconds)


# --- (c) the packaged model -----------------------------------------------------------------------


@dataclass
class Generation:
    label: str
    prompt_tokens: int
    estimated_tokens: int
    cached_tokens: int
    first_token_s: float
    generated_tokens: int
    tokens_per_s: float
    answer: str
    read_tokens: int = 0  # prompt tokens not found in the server's cache

    @property
    def reading_speed(self) -> float:
        return self.read_tokens / self.first_token_s if self.first_token_s > 0 else 0.0


def use_shared_model_file() -> None:
    """Serve the model assembled once in BASE_DIR/data (as benchmarks/llm.py does) rather than a 1.1 GB copy."""
    from django.conf import settings
    from django.test import override_settings

    from chat import local_model

    with override_settings(DATA_DIR=ROOT / "data", LOCAL_LLM_MODEL_PATH=""):
        path = local_model.model_file()
    settings.LOCAL_LLM_MODEL_PATH = str(path)


def exact_prompt_tokens(messages: list[dict]) -> int:
    """The server renders its chat template (POST /apply-template) and tokenizes the result."""
    from chat import llm, local_model

    root = llm.base_url().removesuffix("/v1")
    request = urllib.request.Request(
        f"{root}/apply-template", data=json.dumps({"messages": messages}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with local_model.open_local(request, timeout=60) as response:
        return llm.count_tokens(json.loads(response.read())["prompt"])


def generate(label: str, prompt, *, max_tokens: int) -> Generation:
    """Stream the answer; read llama.cpp's own timings for the cached and generated token counts."""
    from chat import llm

    started = time.perf_counter()
    first = last = 0.0
    pieces = []
    for piece in llm.stream_chat(prompt.messages, max_tokens=max_tokens, temperature=0.0):
        last = time.perf_counter()
        first = first or last
        pieces.append(piece)
    answer = "".join(pieces)
    generated = llm.count_tokens(answer)
    speed = (generated - 1) / (last - first) if last > first else 0.0
    exact = exact_prompt_tokens(prompt.messages)
    return Generation(label, exact, prompt.prompt_tokens, cached_prefix_tokens(), first - started,
                      generated, speed, answer)


def cached_prefix_tokens() -> int:
    """Tokens of the fixed prefix (system prompt and example turns): what a question after another one finds in
    the server's cache."""
    from chat.prompting import prefix_messages

    return exact_prompt_tokens(prefix_messages())


def time_model(prompts: list[tuple[str, object]], *, max_tokens: int) -> tuple[list[Generation], float]:
    from chat import local_model

    use_shared_model_file()
    start_s = timed(local_model.ensure_server)
    try:
        runs = []
        for i, (question_id, prompt) in enumerate(prompts):
            label = f"{question_id}: first after start" if i == 0 else f"{question_id}: fixed prefix cached"
            run = generate(label, prompt, max_tokens=max_tokens)
            run.read_tokens = run.prompt_tokens - (run.cached_tokens if i else 0)
            runs.append(run)
        question_id, prompt = prompts[-1]
        runs.append(generate(f"{question_id}: asked again", prompt, max_tokens=max_tokens))
    finally:
        local_model.stop_server()
    return runs, start_s


# --- Output ---------------------------------------------------------------------------------------


def print_table(rows: list[Row]) -> None:
    widths = [max(len(getattr(r, f)) for r in rows + [Row("measure", "figure", "target", "note")]) for f in
              ("what", "figure", "target")]
    header = Row("measure", "figure", "target", "note")
    for row in [header, None, *rows]:
        if row is None:
            print("-" * (sum(widths) + 6 + 30))
            continue
        print(f"{row.what:<{widths[0]}}  {row.figure:>{widths[1]}}  {row.target:<{widths[2]}}  {row.note}")


def capped(seconds: list[float], args) -> str:
    return f" (stopped after {args.max_seconds:.0f} s)" if len(seconds) < args.queries else ""


def verdict(value: float, limit: float) -> str:
    return "ok" if value < limit else "MISSED"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=100_000, help="synthetic chunks in the vector store")
    parser.add_argument("--queries", type=int, default=100, help="synthetic queries timed against them")
    parser.add_argument("--pages", type=int, default=8, help="handbook questions whose pages are ingested")
    parser.add_argument("--questions", type=int, default=3, help="questions put to the model in (c)")
    parser.add_argument("--max-tokens", type=int, default=96, help="answer length in (c)")
    parser.add_argument("--max-seconds", type=float, default=120, help="time limit of each timed series in (a)")
    parser.add_argument("--no-llm", action="store_true", help="skip (c)")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="lantern-bench-answer-"))
    os.environ["LANTERN_DATA_DIR"] = str(scratch)
    os.environ["LLM_BASE_URL"] = ""  # the packaged model, whatever the shell says
    os.environ.pop("QDRANT_URL", None)
    os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    try:
        rows = run(args)
    finally:
        from kb import vectorstore

        vectorstore.close()
        shutil.rmtree(scratch, ignore_errors=True)
    print()
    print(f"Synthetic points: random normalised 384-d dense vectors; sparse vectors of {TERMS_PER_CHUNK} term draws "
          f"from a Zipf(s={ZIPF_EXPONENT}) vocabulary of {VOCABULARY:,} ids with BM25 weights, {CHUNKS_PER_DOCUMENT} "
          "chunks per Document. Vector store: Qdrant local mode (embedded), as without QDRANT_URL.")
    print(f"cores: {len(os.sched_getaffinity(0))}; load average at the end: {os.getloadavg()[0]:.1f} "
          "(other processes on this machine slow every figure)")
    print_table(rows)
    return 0


def run(args) -> list[Row]:
    from django.conf import settings
    from django.core.management import call_command

    from chat.prompting import build_messages
    from ingestion import embedding

    call_command("migrate", verbosity=0)
    embedding.embed_texts(["warm up"])  # a running portal has the model loaded
    rows: list[Row] = []

    questions = handbook_questions(args.pages)
    collection, pages, ingest_s = ingest_pages(questions)
    print(f"(b) ingested {pages} handbook pages in {ingest_s:.1f} s", file=sys.stderr)
    seconds, found = time_sources(questions, collection.pk)
    p50, p95 = ms(seconds)
    rows.append(Row(f"(b) sources, {pages} real pages: p50 / p95", f"{p50:.0f} / {p95:.0f} ms",
                    "< 300 ms", f"{verdict(p50 / 1000, 0.3)}; passages_search incl. query embedding"))

    if args.points:
        synthetic = Synthetic()
        synthetic_id, rows_s, upsert_s = add_synthetic_chunks(args.points, synthetic)
        print(f"(a) {args.points:,} Chunk rows in {rows_s:.1f} s, points upserted in {upsert_s:.1f} s", file=sys.stderr)
        label = f"{args.points // 1000}k" if args.points >= 1000 else str(args.points)
        scopes = [synthetic_id, collection.pk]
        seconds = time_points_search(args.queries, synthetic, scopes, max_seconds=args.max_seconds)
        p50, p95 = ms(seconds)
        rows.append(Row(f"(a) points_search hybrid at {label} synthetic: p50 / p95", f"{p50:.0f} / {p95:.0f} ms",
                        "p50 < 50 ms", f"{verdict(p50 / 1000, 0.05)}; {len(seconds)} queries{capped(seconds, args)}"))
        real = [q["question"] for q in questions]
        seconds = time_passages_search((real * (args.queries // len(real) + 1))[: args.queries], scopes,
                                       max_seconds=args.max_seconds)
        p50, p95 = ms(seconds)
        rows.append(Row(f"(a) passages_search at {label} synthetic: p50 / p95", f"{p50:.0f} / {p95:.0f} ms", "",
                        f"+ query embedding, Chunk lookup, merging; {len(seconds)} queries{capped(seconds, args)}"))
        seconds, _ = time_sources(questions, collection.pk, max_seconds=args.max_seconds)
        p50, p95 = ms(seconds)
        rows.append(Row(f"(b) sources, real pages beside {label} synthetic: p50 / p95", f"{p50:.0f} / {p95:.0f} ms",
                        "< 300 ms", f"{verdict(p50 / 1000, 0.3)}; filtered to the real pages' collection"))

    if not args.no_llm:
        asked = [q for q in questions if found.get(q["id"])][: args.questions]
        prompts = [(q["id"], build_messages(question=q["question"], passages=found[q["id"]])) for q in asked]
        runs, start_s = time_model(prompts, max_tokens=args.max_tokens)
        rows.append(Row("(c) model server start (model file ready)", f"{start_s:.1f} s"))
        for g in runs:
            rows.append(Row(f"(c) first token, {g.label}", f"{g.first_token_s:.1f} s", "< 10 s",
                            f"{verdict(g.first_token_s, 10)}; prompt {g.prompt_tokens} tok (estimate "
                            f"{g.estimated_tokens}, budget {settings.PROMPT_TOKEN_BUDGET}), "
                            f"{g.read_tokens} not cached"))
        reading = [g.reading_speed for g in runs if g.read_tokens]
        rows.append(Row("(c) prompt reading speed, median", f"{statistics.median(reading):.1f} tok/s", "",
                        f"tokens not cached / first token; the fixed prefix is {runs[0].cached_tokens} tok"))
        speeds = [g.tokens_per_s for g in runs]
        rows.append(Row("(c) generation speed, median", f"{statistics.median(speeds):.1f} tok/s", "",
                        f"{args.max_tokens} tokens at most per answer, temperature 0"))
        for g in runs:
            print(f"  {g.label}: {g.answer.strip()[:160]!r}", file=sys.stderr)
    return rows


if __name__ == "__main__":
    sys.exit(main())
