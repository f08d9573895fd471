"""Golden questions pages (staff): record one from a gap or a thumbs-down, run them all, export and import."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from kb.models import Collection
from kb.selectors import collections_readable

from . import golden
from .models import GoldenRun

MAX_IMPORT_BYTES = 20 * 1024 * 1024


def _int_or_none(value) -> int | None:
    value = str(value or "").strip()
    return int(value) if value.isdigit() else None


@staff_member_required
@require_GET
def golden_page(request):
    runs = list(golden.golden_runs_list()[:10])
    finished = next((r for r in runs if r.status == GoldenRun.Status.DONE), None)
    active = next((r for r in runs if r.status in (GoldenRun.Status.QUEUED, GoldenRun.Status.RUNNING)), None)
    latest = {r.golden_id: r for r in finished.results.all()} if finished else {}
    questions = [{"golden": g, "result": latest.get(g.pk)} for g in golden.golden_list()]
    return render(
        request,
        "health/golden.html",
        {
            "section": "golden",
            "questions": questions,
            "runs": runs,
            "active": active,
            "comparison": golden.golden_run_compare(run=finished) if finished else None,
            "collections": Collection.objects.filter(pk__in=collections_readable(user=request.user)),
        },
    )


@staff_member_required
@require_http_methods(["GET", "POST"])
def golden_new(request):
    data = request.POST if request.method == "POST" else request.GET
    unanswered_id, message_id = _int_or_none(data.get("unanswered")), _int_or_none(data.get("message"))
    try:
        draft = golden.golden_draft(user=request.user, unanswered_id=unanswered_id, message_id=message_id)
    except golden.GoldenError as error:
        messages.error(request, str(error))
        draft = golden.GoldenDraft()
    error = ""
    if request.method == "POST" and not data.get("find"):  # "Find documents" (no script) only redraws the form
        try:
            created = golden.golden_create(
                user=request.user,
                question=data.get("question", ""),
                reference_answer=data.get("reference_answer", ""),
                document_id=_int_or_none(data.get("document")),
                chunk_id=_int_or_none(data.get("chunk")),
                evidence=data.get("evidence", ""),
                unanswered_id=draft.unanswered_id,
                message_id=draft.message_id,
            )
        except golden.GoldenError as problem:
            error = str(problem)
        else:
            messages.success(request, f"Golden question added: “{created.question[:80]}”. It is asked again on every run.")
            return redirect("health:golden")
    return render(request, "health/golden_new.html", _form_context(request, data, draft, error))


def _form_context(request, data, draft: golden.GoldenDraft, error: str) -> dict:
    query = data.get("q", "").strip()
    document_id = _int_or_none(data.get("document"))
    picked, passages = None, []
    if document_id is not None:
        try:
            picked, chunks = golden.document_passages(user=request.user, document_id=document_id)
            passages = list(chunks)
        except golden.GoldenError:
            picked = None
    results = list(golden.documents_pick(user=request.user, query=query)) if query else []
    if picked is not None and picked not in results:
        results.insert(0, picked)
    return {
        "section": "golden",
        "draft": draft,
        "error": error,
        "question": data.get("question", draft.question),
        "reference_answer": data.get("reference_answer", ""),
        "evidence": data.get("evidence", ""),
        "query": query,
        "results": results,
        "picked": picked,
        "passages": passages,
        "chunk_id": _int_or_none(data.get("chunk")),
        "searched": bool(query),
    }


@staff_member_required
@require_GET
def golden_picker(request):
    """HTML fragments for the picker: the documents matching ?q=, or the passages of ?document=."""
    document_id = _int_or_none(request.GET.get("document"))
    if document_id is not None:
        try:
            document, chunks = golden.document_passages(user=request.user, document_id=document_id)
        except golden.GoldenError:
            raise Http404("No such document") from None
        return render(request, "health/golden_passages.html", {"picked": document, "passages": chunks, "chunk_id": None})
    query = request.GET.get("q", "").strip()
    results = list(golden.documents_pick(user=request.user, query=query)) if query else []
    return render(request, "health/golden_results.html", {"results": results, "query": query, "searched": bool(query), "picked": None})


@staff_member_required
@require_POST
def golden_delete(request, golden_id: int):
    golden.golden_delete(golden_id=golden_id)
    messages.success(request, "Golden question removed.")
    return redirect("health:golden")


@staff_member_required
@require_POST
def golden_run_start(request):
    try:
        run = golden.golden_run_start(user=request.user)
    except golden.GoldenError as error:
        messages.error(request, str(error))
        return redirect("health:golden")
    return redirect(f"{reverse('health:golden')}#run-{run.pk}")


@staff_member_required
@require_GET
def golden_run_status(request, run_id: int):
    run = get_object_or_404(GoldenRun, pk=run_id)
    return JsonResponse(
        {"id": run.pk, "status": run.status, "completed": run.completed, "total": run.total,
         "progress": round(run.progress, 3), "error": run.error}
    )


@staff_member_required
@require_GET
def golden_run_detail(request, run_id: int):
    run = get_object_or_404(GoldenRun, pk=run_id)
    comparison = golden.golden_run_compare(run=run) if run.status == GoldenRun.Status.DONE else None
    results = [(r, golden.verdict(r)) for r in run.results.all()]
    return render(request, "health/golden_run.html", {"section": "golden", "run": run, "results": results, "comparison": comparison})


@staff_member_required
@require_GET
def golden_export(request):
    response = HttpResponse("".join(golden.golden_export_lines()), content_type="application/x-ndjson; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="questions.jsonl"'
    return response


@staff_member_required
@require_POST
def golden_import(request):
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "Choose a questions.jsonl file to import.")
        return redirect("health:golden")
    if upload.size > MAX_IMPORT_BYTES:
        messages.error(request, f"{upload.name} is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB; split it.")
        return redirect("health:golden")
    collection_id = _int_or_none(request.POST.get("collection"))
    collection = None
    if collection_id is not None:
        collection = Collection.objects.filter(pk=collection_id, pk__in=collections_readable(user=request.user)).first()
    report = golden.golden_import(user=request.user, lines=upload.read().splitlines(), collection=collection)
    messages.success(request, f"Imported {report.created} new and updated {report.updated} golden question(s).")
    for reason in report.skipped[:20]:
        messages.error(request, f"Skipped {reason}")
    if len(report.skipped) > 20:
        messages.error(request, f"… and {len(report.skipped) - 20} more lines skipped.")
    return redirect("health:golden")

