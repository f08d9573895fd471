"""`manage.py evaluate DATASET_DIR`: ingest a dataset's corpus into its own collection, then measure retrieval
(Recall@k, MRR@10, nDCG@10, latency) for hybrid, dense-only and lexical-only search, and with --generate the answers.

`manage.py evaluate --golden`: rerun every golden question (health.golden) against the current index and model, and
show recall and answer correctness with the change since the last run."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

from django.core.management import BaseCommand, CommandError
from tqdm import tqdm

from chat import evaluation
from chat.cli import add_user_argument, user_named
from ingestion.services import documents_upload
from ingestion.worker import worker_for_this_process
from kb import vectorstore
from kb.models import Document, UploadBatch
from kb.selectors import SEARCH_MODES, passages_search
from kb.services import collection_create

FILES_PER_TRANSACTION = 200


class Command(BaseCommand):
    help = "Measure retrieval (and with --generate, answers) on a dataset folder (see ../shared/eval/README.md)."

    def add_arguments(self, parser):
        parser.add_argument("dataset", type=Path, nargs="?")
        parser.add_argument(
            "--golden", action="store_true", help="Rerun the golden questions recorded on /health/golden/ instead of a dataset."
        )
        parser.add_argument("--k", type=int, default=None, help="Recall@k cut-off (default 10; with --golden, SEARCH_TOP_K).")
        parser.add_argument("--limit", type=int, default=None, help="Only the first N questions.")
        parser.add_argument(
            "--modes", default="hybrid,dense,sparse", help="Comma-separated search modes to measure (default all three)."
        )
        parser.add_argument("--generate", action="store_true", help="Also answer each question with the model.")
        add_user_argument(parser)
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print one JSON object instead of tables.")

    def handle(self, *args, dataset, golden, k, limit, modes, generate, as_json, user, **options):
        if golden:
            self._golden(k=k, as_json=as_json)
            return
        if dataset is None:
            raise CommandError("Give a dataset folder, or --golden to rerun the golden questions.")
        k = k or 10
        self.user = user_named(user)
        try:
            data = evaluation.dataset_load(dataset)
        except evaluation.DatasetError as error:
            raise CommandError(str(error)) from None
        wanted = [m.strip() for m in modes.split(",") if m.strip()]
        if unknown := [m for m in wanted if m not in SEARCH_MODES]:
            raise CommandError(f"Unknown mode(s) {unknown}; choose from {', '.join(SEARCH_MODES)}.")
        if limit:
            data = evaluation.Dataset(root=data.root, questions=data.questions[:limit])
        with worker_for_this_process():
            collection = self._ingest(data, quiet=as_json)
        doc_id_of = evaluation.document_ids_of(collection)
        reports = [self._retrieval(data, collection, doc_id_of, mode=m, k=k) for m in wanted]
        generation = self._generate(data, collection, doc_id_of, quiet=as_json) if generate else None
        self._print(data, reports, generation, as_json=as_json)
        vectorstore.close()  # release the embedded store now, not in a destructor at interpreter exit

    # --- steps ---

    def _ingest(self, data: evaluation.Dataset, *, quiet: bool):
        """The corpus goes in through the normal upload path; unchanged documents (same bytes) are not redone."""
        collection = collection_create(name=data.collection_name)
        batch = UploadBatch.objects.create(collection=collection, label=f"evaluate {data.name}")
        files = data.corpus_files()
        try:
            while group := list(itertools.islice(files, FILES_PER_TRANSACTION)):
                documents_upload(collection=collection, files=group, batch=batch)
        except evaluation.DatasetError as error:
            raise CommandError(str(error)) from None
        self._wait(collection, quiet=quiet)
        failed = Document.objects.filter(collection=collection, status=Document.Status.FAILED)
        if failed.exists() and not quiet:
            self.stderr.write(f"{failed.count()} corpus document(s) failed and are left out, e.g. {failed.first().error}")
        return collection

    def _wait(self, collection, *, quiet: bool) -> None:
        """Until every document of the collection is done, including ones an interrupted earlier run left queued."""
        documents = Document.objects.filter(collection=collection)
        pending = documents.filter(status__in=Document.PENDING_STATUSES)
        total = documents.count()
        with tqdm(total=total, unit="doc", desc="Ingesting corpus", disable=quiet or not pending.exists()) as bar:
            while pending.exists():
                bar.n = total - pending.count()
                bar.refresh()
                time.sleep(0.5)
            bar.n = total
            bar.refresh()

    def _retrieval(self, data, collection, doc_id_of, *, mode: str, k: int) -> evaluation.RetrievalReport:
        def search(query: str, count: int):
            return passages_search(user=self.user, query=query, k=count, collection_ids=[collection.pk], mode=mode)

        search("warm-up", 1)  # the first query loads the embedding model; keep that out of the latency figures
        return evaluation.retrieval_evaluate(dataset=data, search=search, doc_id_of=doc_id_of, mode=mode, k=k)

    def _generate(self, data, collection, doc_id_of, *, quiet: bool) -> evaluation.GenerationReport:
        from chat.services import answer_collect

        outcomes = []
        for question in tqdm(data.questions, desc="Answering", unit="question", disable=quiet):
            result = answer_collect(text=question.question, user=self.user, collection_ids=[collection.pk])
            outcomes.append(evaluation.answer_outcome(question, result, doc_id_of=doc_id_of))
        return evaluation.generation_report(outcomes)

    # --- output ---

    def _print(self, data, reports, generation, *, as_json: bool) -> None:
        if as_json:
            payload = {"dataset": str(data.root), "retrieval": [r.as_dict() for r in reports]}
            if generation is not None:
                payload["generation"] = generation.as_dict()
            self.stdout.write(json.dumps(payload, indent=2))
            return
        k = reports[0].k if reports else 10
        self.stdout.write(f"Dataset {data.root} ({len(data.questions)} questions)\n")
        self.stdout.write(f"{'mode':<8} {'Recall@' + str(k):>10} {'MRR@10':>8} {'nDCG@10':>8} {'p50 ms':>8} {'p95 ms':>8}")
        for r in reports:
            self.stdout.write(
                f"{r.mode:<8} {r.recall:>10.4f} {r.mrr:>8.4f} {r.ndcg:>8.4f} {r.latency_p50_ms:>8.1f} {r.latency_p95_ms:>8.1f}"
            )
        if generation is not None:
            self.stdout.write("\nAnswers")
            for key, value in generation.as_dict().items():
                shown = "n/a" if value is None else value
                self.stdout.write(f"  {key:<28} {shown}")

    # --- golden questions ---

    def _golden(self, *, k: int | None, as_json: bool) -> None:
        """Run in this process when it can open the vector store; otherwise the running portal's worker runs it and
        this command follows its progress through the database."""
        from health import golden
        from health.checks import run_golden_questions

        run = golden.golden_run_create(k=k)
        if run.total == 0:
            run.delete()
            raise CommandError("There are no golden questions yet: add them on /health/golden/ or import a questions.jsonl.")
        try:
            vectorstore.client()
        except vectorstore.VectorStoreLocked:
            run_golden_questions.delay(run.pk)
            run = self._follow(run, quiet=as_json)
        else:
            with tqdm(total=run.total, unit="question", desc="Golden questions", disable=as_json) as bar:
                run = golden.golden_run_execute(run_id=run.pk, on_progress=lambda current: bar.update(1))
            vectorstore.close()
        if run.status != run.Status.DONE:
            raise CommandError(f"The golden run failed: {run.error}")
        self._print_golden(golden.golden_run_compare(run=run), as_json=as_json)

    def _follow(self, run, *, quiet: bool):
        with tqdm(total=run.total, unit="question", desc="Golden questions (portal worker)", disable=quiet) as bar:
            while run.status not in (run.Status.DONE, run.Status.FAILED):
                time.sleep(0.5)
                run.refresh_from_db()
                bar.n = run.completed
                bar.refresh()
        return run

    def _print_golden(self, comparison, *, as_json: bool) -> None:
        from health.golden import verdict

        run, previous = comparison.run, comparison.previous
        results = list(run.results.all())
        if as_json:
            payload = {
                "run": run.pk, "k": run.k, "model": run.model_name, "questions": run.total,
                "recall": run.recall, "correct": run.correct,
                "previous_run": previous.pk if previous else None,
                "recall_change": comparison.recall_change, "correct_change": comparison.correct_change,
                "results": [
                    {"question": r.question, "recall": r.recall, "rank": r.rank, "correct": r.correct, "abstained": r.abstained}
                    for r in results
                ],
                "changes": [c.__dict__ for c in comparison.changes],
            }
            self.stdout.write(json.dumps(payload, indent=2))
            return
        self.stdout.write(f"Golden run {run.pk}: {run.total} questions, top {run.k}, model {run.model_name}")
        for r in results:
            self.stdout.write(f"  {verdict(r):<34} {r.question[:90]}")
        self.stdout.write(f"recall   {_figure(run.recall)}{_delta(comparison.recall_change)}")
        self.stdout.write(f"correct  {_figure(run.correct)}{_delta(comparison.correct_change)}")
        if previous is None:
            self.stdout.write("First run: nothing to compare with.")
            return
        self.stdout.write(f"Compared with run {previous.pk} ({previous.finished_at:%Y-%m-%d %H:%M}, {previous.model_name}):")
        for change in comparison.changes:
            self.stdout.write(f"  {change.question[:70]}: {change.was} -> {change.now}")
        if not comparison.changes:
            self.stdout.write("  no question changed its verdict")


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _delta(change: float | None) -> str:
    return "" if change is None else f"  ({change:+.4f} since the last run)"
