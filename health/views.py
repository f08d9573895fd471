"""The content health pages: thin views over health.selectors. Staff only, except each owner's own review list."""

from __future__ import annotations

from datetime import date

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from kb.models import Collection, Document
from kb.selectors import collections_readable

from . import selectors

FEEDBACK_PER_PAGE = 25
CHART_DAYS = 30


@staff_member_required
@require_GET
def overview(request):
    """The charts and the numbers behind them."""
    activity = selectors.activity_by_day(days=CHART_DAYS)
    totals = {
        "questions": sum(d.questions for d in activity),
        "answered": sum(d.answered for d in activity),
        "unanswered": sum(d.unanswered for d in activity),
        "rated": sum(d.rated for d in activity),
        "helpful": sum(d.helpful for d in activity),
    }
    totals["helpful_percent"] = round(100 * totals["helpful"] / totals["rated"]) if totals["rated"] else None
    chart_data = {
        "days": [d.day.isoformat() for d in activity],
        "questions": [d.questions for d in activity],
        "answered": [d.answered for d in activity],
        "unanswered": [d.unanswered for d in activity],
        "helpful_percent": [d.helpful_percent for d in activity],
    }
    today = timezone.localdate()
    return render(request, "health/overview.html", {
        "section": "overview", "activity": activity, "totals": totals, "chart_data": chart_data, "days": CHART_DAYS,
        "overdue_count": selectors.documents_overdue(user=request.user, today=today).count(),
    })


@staff_member_required
@require_GET
def gaps(request):
    sort = "newest" if request.GET.get("sort") == "newest" else "largest"
    found = selectors.gaps_list(user=request.user, sort=sort)
    return render(request, "health/gaps.html", {"section": "gaps", "gaps": found, "sort": sort})


@staff_member_required
@require_GET
def feedback(request):
    filters, errors = _feedback_filters(request.GET)
    rows = selectors.feedback_list(user=request.user, **filters)
    page = Paginator(rows, FEEDBACK_PER_PAGE).get_page(request.GET.get("page"))
    readable = collections_readable(user=request.user)
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "health/feedback.html", {
        "section": "feedback", "page": page, "total": len(rows), "filters": filters, "errors": errors,
        "query": query.urlencode(),
        "collections": Collection.objects.filter(pk__in=readable),
        "documents": Document.objects.filter(collection_id__in=readable).only("pk", "title").order_by("title"),
    }, status=400 if errors else 200)


def _feedback_filters(params) -> tuple[dict, list[str]]:
    """The filters a person chose; a value that makes no sense is reported and ignored, the others still apply."""
    filters: dict = {}
    errors: list[str] = []
    for name in ("collection", "document"):
        raw = params.get(name, "").strip()
        if raw:
            if raw.isdigit():
                filters[f"{name}_id"] = int(raw)
            else:
                errors.append(f"Choose the {name} from the list.")
    rating = params.get("rating", "")
    if rating in ("helpful", "not_helpful"):
        filters["helpful"] = rating == "helpful"
    elif rating:
        errors.append("Rating is helpful or not helpful.")
    for name, label in (("since", "From"), ("until", "To")):
        raw = params.get(name, "").strip()
        if raw:
            try:
                filters[name] = date.fromisoformat(raw)
            except ValueError:
                errors.append(f"{label}: {raw!r} is not a date (YYYY-MM-DD).")
    return filters, errors


@staff_member_required
@require_GET
def documents(request):
    usage = selectors.documents_usage(user=request.user)
    indexed = Document.Status.INDEXED
    return render(request, "health/documents.html", {
        "section": "documents",
        "cited": [u for u in usage if u.cited or u.shown],
        "never_cited": [u for u in usage if not u.cited and u.document.status == indexed],
    })


@staff_member_required
@require_GET
def staleness(request):
    today = timezone.localdate()
    return render(request, "health/staleness.html", {
        "section": "staleness", "today": today,
        "overdue": selectors.documents_overdue(user=request.user, today=today),
        "due_soon": selectors.documents_due_soon(user=request.user, today=today),
        "soon_days": selectors.REVIEW_SOON_DAYS,
    })


@login_required
@require_GET
def mine(request):
    """The signed-in person's own documents to review (any user who owns documents, not only staff)."""
    today = timezone.localdate()
    owned = list(selectors.documents_owned(owner=request.user))
    return render(request, "health/mine.html", {
        "today": today,
        "overdue": [d for d in owned if d.review_by and d.review_by < today],
        "others": [d for d in owned if not (d.review_by and d.review_by < today)],
    })
