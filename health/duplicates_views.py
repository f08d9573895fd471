"""The duplicates and conflicts panel (staff): pairs side by side, retire one document or dismiss a false alarm."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from kb.models import Document

from . import duplicates
from .models import ConflictPair, Dismissal, DuplicatePair

PAIRS_PER_PAGE = 25


@staff_member_required
@require_GET
def duplicates_page(request):
    conflicts = Paginator(duplicates.conflict_pairs_list(user=request.user), PAIRS_PER_PAGE).get_page(request.GET.get("conflicts"))
    near = Paginator(duplicates.duplicate_pairs_list(user=request.user), PAIRS_PER_PAGE).get_page(request.GET.get("duplicates"))
    return render(
        request,
        "health/duplicates.html",
        {
            "section": "duplicates",
            "conflicts": conflicts,
            "conflict_rows": [_conflict_row(p) for p in conflicts],
            "duplicates": near,
            "duplicate_rows": [_duplicate_row(p) for p in near],
        },
    )


def _conflict_row(pair: ConflictPair) -> dict:
    return {
        "pair": pair,
        "a": duplicates.text_segments(pair.chunk_a.text, pair.facts_a),
        "b": duplicates.text_segments(pair.chunk_b.text, pair.facts_b),
        "facts_a": sorted({f["text"] for f in pair.facts_a}),
        "facts_b": sorted({f["text"] for f in pair.facts_b}),
    }


def _duplicate_row(pair: DuplicatePair) -> dict:
    text_a = pair.chunk_a.text if pair.chunk_a else ""
    text_b = pair.chunk_b.text if pair.chunk_b else ""
    spans_a, spans_b = duplicates.difference_spans(text_a, text_b)
    return {
        "pair": pair,
        "percent": round(pair.similarity * 100),
        "a": duplicates.text_segments(text_a, spans_a),
        "b": duplicates.text_segments(text_b, spans_b),
    }


@staff_member_required
@require_POST
def pair_dismiss_view(request, kind: str, pair_id: int):
    if kind not in Dismissal.Kind.values:
        raise Http404("No such kind of finding")
    try:
        duplicates.pair_dismiss(user=request.user, kind=kind, pair_id=pair_id)
    except (DuplicatePair.DoesNotExist, ConflictPair.DoesNotExist):
        messages.error(request, "That finding is gone already (a document changed or was deleted).")
    else:
        messages.success(request, "Dismissed: it will not be shown again unless one of the passages changes.")
    return redirect("health:duplicates")


@staff_member_required
@require_POST
def document_retire_view(request, document_id: int):
    try:
        document = duplicates.document_retire(user=request.user, document_id=document_id)
    except Document.DoesNotExist:
        messages.error(request, "That document is gone already.")
    else:
        messages.success(request, f"“{document.title}” was retired: deleted with its passages and file.")
    return redirect("health:duplicates")
