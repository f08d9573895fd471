"""Near-duplicate documents and conflicting passages, found incrementally: a newly indexed document against the rest.

Each passage of the new document asks the vector store for its nearest passages in other documents (dense vectors,
cosine). Two documents are near-duplicates when most passages of both have a near-identical passage in the other.
Two highly similar passages conflict when one states a number, a date or a name that the other document never
states while the other states a different one in its place (numbers must share the word next to them: "240 hours"
against "200 hours", not "240 hours" against "Section 5").

Invariant kept by `document_similarity_check`: after it, the pairs involving the document are exactly those of its
indexed version. A new version replaces its Chunk rows (and with them its conflict pairs) and is checked again;
a deleted document takes its pairs with it.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import re
import uuid
from dataclasses import dataclass, field

import numpy as np
from django.db import transaction
from django.db.models import F, Q, QuerySet

from kb import services as kb_services
from kb import vectorstore
from kb.models import Chunk, Collection, Document
from kb.selectors import collections_readable

from .models import ConflictPair, Dismissal, DuplicatePair, SimilarityCheck

logger = logging.getLogger(__name__)

# Cosine similarity (all-MiniLM-L6-v2) at which two passages are the same text, lightly edited.
DUPLICATE_PASSAGE_SIMILARITY = 0.92
# Share of the passages of both documents that must have such a twin for the documents to be near-duplicates.
DUPLICATE_DOCUMENT_SHARE = 0.8
# Cosine similarity at which two passages speak about the same thing closely enough to contradict each other.
CONFLICT_PASSAGE_SIMILARITY = 0.8
NEIGHBOURS = 8  # nearest passages of other documents looked at, per passage


# --- Facts: numbers, dates, names ---------------------------------------------------------------------------------

_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_MONTH = rf"(?:{_MONTHS}|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)\.?"
_DATE = re.compile(
    r"\b\d{4}-\d{1,2}-\d{1,2}\b"
    r"|\b\d{1,2}[/.]\d{1,2}[/.]\d{2,4}\b"
    rf"|\b(?:\d{{1,2}}(?:st|nd|rd|th)?\s+)?{_MONTH}(?:\s+\d{{1,2}}(?:st|nd|rd|th)?\b,?)?(?:\s+\d{{4}}\b)?",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?:\s?%)?")
_WORD = re.compile(r"[^\W\d_]+")
_NAME = re.compile(r"\b[A-Z][\w'&-]*(?:[ \t]+(?:(?:of|de|van|von|and|&)[ \t]+)?[A-Z][\w'&-]*)*")
_NOT_NAMES = {
    "the", "a", "an", "and", "or", "but", "if", "in", "on", "at", "to", "for", "of", "by", "with", "from", "as",
    "this", "that", "these", "those", "it", "its", "we", "you", "your", "our", "they", "their", "he", "she", "i",
    "all", "any", "each", "every", "no", "not", "yes", "please", "note", "see", "when", "where", "what", "who",
    "how", "why", "which", "there", "here", "after", "before", "during", "until", "up", "do", "does", "is", "are",
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", *_MONTHS.split("|"),
}


@dataclass(frozen=True)
class Fact:
    kind: str  # "number", "date" or "name"
    text: str  # as written
    value: str  # normalised, for comparing
    context: str  # numbers: the word next to them ("hours"); others: ""
    start: int
    end: int

    def as_dict(self) -> dict:
        return {"kind": self.kind, "text": self.text, "start": self.start, "end": self.end}


def facts_of(text: str) -> list[Fact]:
    """The numbers (with the word next to each), dates and capitalised names a passage states."""
    facts: list[Fact] = []
    taken: list[tuple[int, int]] = []
    for match in _DATE.finditer(text):
        if not re.search(r"\d", match.group()) and not re.fullmatch(rf"{_MONTH}\s+\d{{4}}", match.group(), re.I):
            continue  # a month name alone is not a date ("May" may be a verb)
        facts.append(Fact("date", match.group(), _collapse(match.group()), "", match.start(), match.end()))
        taken.append(match.span())
    for match in _NUMBER.finditer(text):
        if any(s <= match.start() < e for s, e in taken):
            continue
        value = match.group().replace(" ", "").replace(",", "")
        facts.append(Fact("number", match.group(), value, _number_context(text, match), match.start(), match.end()))
    for match in _NAME.finditer(text):
        name = _name_without_sentence_start(text, match)
        if name is None:
            continue
        start = match.start() + match.group().index(name)
        facts.append(Fact("name", name, name.lower(), "", start, start + len(name)))
    return facts


def _number_context(text: str, match: re.Match) -> str:
    after = _WORD.search(text, match.end(), match.end() + 40)
    if after and after.group().lower() not in _NOT_NAMES:
        return after.group().lower()
    before = list(_WORD.finditer(text[max(0, match.start() - 40) : match.start()]))
    return before[-1].group().lower() if before else ""


def _name_without_sentence_start(text: str, match: re.Match) -> str | None:
    words = match.group().split()
    sentence_start = match.start() == 0 or re.search(r"[.!?:\n]\s*$|^\s*$|[#*\-]\s*$", text[max(0, match.start() - 3) : match.start()])
    if (sentence_start and len(words) == 1) or words[0].lower() in _NOT_NAMES:
        words = words[1:]  # a capital that only starts a sentence ("Contractors ...") is no name
    while words and words[0].lower() in _NOT_NAMES:
        words = words[1:]
    if not words or all(w.lower() in _NOT_NAMES for w in words):
        return None
    return " ".join(words)


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


@dataclass
class Contradiction:
    facts_a: list[Fact] = field(default_factory=list)
    facts_b: list[Fact] = field(default_factory=list)


def passages_contradiction(*, text_a: str, text_b: str, document_a_text: str, document_b_text: str) -> Contradiction | None:
    """What one passage states in place of what the other states, or None when they agree.

    A fact counts as different only if the other document never states it anywhere: passages cut at different places
    (or a fact told a few lines later) are not contradictions.
    """
    facts_a, facts_b = facts_of(text_a), facts_of(text_b)
    known_a, known_b = _values(facts_of(document_a_text)), _values(facts_of(document_b_text))
    only_a = [f for f in facts_a if (f.kind, f.value) not in known_b]
    only_b = [f for f in facts_b if (f.kind, f.value) not in known_a]
    found = Contradiction()
    for kind in ("number", "date", "name"):
        side_a = [f for f in only_a if f.kind == kind]
        side_b = [f for f in only_b if f.kind == kind]
        if kind == "number":
            shared = {f.context for f in side_a if f.context} & {f.context for f in side_b}
            side_a = [f for f in side_a if f.context in shared]
            side_b = [f for f in side_b if f.context in shared]
        if side_a and side_b:
            found.facts_a += side_a
            found.facts_b += side_b
    return found if found.facts_a else None


def _values(facts: list[Fact]) -> set[tuple[str, str]]:
    return {(f.kind, f.value) for f in facts}


# --- The check ----------------------------------------------------------------------------------------------------


@dataclass
class _Match:
    own: Chunk
    other: Chunk
    similarity: float


def document_similarity_check(*, document_id: int) -> SimilarityCheck | None:
    """Compare the document's indexed version with every other document; replace the pairs that involve it.

    Returns None when there is nothing to check (deleted, or not indexed yet: its indexing enqueues a check).
    """
    document = Document.objects.filter(pk=document_id, status=Document.Status.INDEXED).first()
    if document is None:
        return None
    version = document.indexed_version
    own = _own_vectors(document, version)
    matches = _nearest_in_other_documents(own)
    duplicates = _duplicate_pairs(document, own, matches)
    conflicts = _conflict_pairs(document, matches)
    with transaction.atomic():
        if not Document.objects.filter(pk=document.pk, indexed_version=version).exists():
            return None  # replaced meanwhile: the new version's check will do it
        DuplicatePair.objects.filter(Q(document_a=document) | Q(document_b=document)).delete()
        ConflictPair.objects.filter(Q(document_a=document) | Q(document_b=document)).delete()
        DuplicatePair.objects.bulk_create(_still_there(duplicates), ignore_conflicts=True)
        ConflictPair.objects.bulk_create(_still_there(conflicts), ignore_conflicts=True)
        check, _ = SimilarityCheck.objects.update_or_create(
            document=document,
            defaults={"version": version, "chunks": len(own), "duplicates_found": len(duplicates), "conflicts_found": len(conflicts)},
        )
    logger.info("Similarity check of document %s: %d duplicate(s), %d conflict(s)", document.pk, len(duplicates), len(conflicts))
    return check


def _own_vectors(document: Document, version: int) -> list[tuple[Chunk, np.ndarray]]:
    chunks = {str(c.point_id): c for c in document.chunks.all()}
    vectors = vectorstore.points_dense(document_id=document.pk, version=version)
    return [(chunks[p], _unit(v)) for p, v in vectors.items() if p in chunks]


def _unit(vector) -> np.ndarray:
    array = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(array))
    return array / norm if norm else array


def _nearest_in_other_documents(own: list[tuple[Chunk, np.ndarray]]) -> list[_Match]:
    collection_ids = list(Collection.objects.values_list("pk", flat=True))
    limit = min(NEIGHBOURS + len(own), 100)  # the document's own passages come back too, and are skipped
    matches: list[_Match] = []
    for chunk, vector in own:
        hits = vectorstore.points_search(
            dense=vector.tolist(), sparse=None, collection_ids=collection_ids, limit=limit, with_dense=True
        )
        others = [h for h in hits if h.payload.get("document_id") != chunk.document_id][:NEIGHBOURS]
        # Hits resolve through Chunk rows: points of a version being replaced have none and drop out.
        rows = Chunk.objects.select_related("document").in_bulk([uuid.UUID(h.point_id) for h in others], field_name="point_id")
        for hit in others:
            other = rows.get(uuid.UUID(hit.point_id))
            if other is not None and hit.dense is not None:
                matches.append(_Match(chunk, other, float(np.dot(vector, _unit(hit.dense)))))
    return matches


def _duplicate_pairs(document: Document, own, matches: list[_Match]) -> list[DuplicatePair]:
    candidates = {m.other.document for m in matches if m.similarity >= DUPLICATE_PASSAGE_SIMILARITY}
    own_matrix = np.stack([v for _, v in own]) if own else np.zeros((0, 1))
    pairs = []
    for other in candidates:
        other_chunks = {str(c.point_id): c for c in other.chunks.all()}
        vectors = vectorstore.points_dense(document_id=other.pk, version=other.indexed_version)
        other_rows = [(other_chunks[p], _unit(v)) for p, v in vectors.items() if p in other_chunks]
        if not other_rows or not own:
            continue
        similarity = own_matrix @ np.stack([v for _, v in other_rows]).T
        twins = (similarity >= DUPLICATE_PASSAGE_SIMILARITY)
        share = (twins.any(axis=1).sum() + twins.any(axis=0).sum()) / (len(own) + len(other_rows))
        if share < DUPLICATE_DOCUMENT_SHARE:
            continue
        i, j = np.unravel_index(int(np.argmax(similarity)), similarity.shape)
        pairs.append(_ordered_duplicate(document, own[i][0], other, other_rows[j][0], float(share)))
    return pairs


def _ordered_duplicate(document: Document, chunk: Chunk, other: Document, other_chunk: Chunk, share: float) -> DuplicatePair:
    (doc_a, chunk_a), (doc_b, chunk_b) = sorted([(document, chunk), (other, other_chunk)], key=lambda pair: pair[0].pk)
    return DuplicatePair(
        document_a=doc_a, document_b=doc_b, version_a=doc_a.indexed_version, version_b=doc_b.indexed_version,
        similarity=round(share, 4), chunk_a=chunk_a, chunk_b=chunk_b, fingerprint=duplicate_fingerprint(doc_a, doc_b),
    )


def duplicate_fingerprint(doc_a: Document, doc_b: Document) -> str:
    return _digest(*sorted([f"{doc_a.pk}:{doc_a.sha256}", f"{doc_b.pk}:{doc_b.sha256}"]))


def conflict_fingerprint(text_a: str, text_b: str) -> str:
    return _digest(*sorted([_collapse(text_a), _collapse(text_b)]))


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _conflict_pairs(document: Document, matches: list[_Match]) -> list[ConflictPair]:
    texts: dict[int, str] = {document.pk: document.extracted_text}
    pairs: dict[tuple[int, int], ConflictPair] = {}
    for match in sorted(matches, key=lambda m: -m.similarity):
        if match.similarity < CONFLICT_PASSAGE_SIMILARITY:
            continue
        other_document = match.other.document
        texts.setdefault(other_document.pk, other_document.extracted_text)
        found = passages_contradiction(
            text_a=match.own.text, text_b=match.other.text,
            document_a_text=texts[document.pk], document_b_text=texts[other_document.pk],
        )
        if found is None:
            continue
        sides = sorted([(match.own, found.facts_a), (match.other, found.facts_b)], key=lambda side: side[0].pk)
        (chunk_a, facts_a), (chunk_b, facts_b) = sides
        key = (chunk_a.pk, chunk_b.pk)
        if key not in pairs:
            pairs[key] = ConflictPair(
                document_a_id=chunk_a.document_id, document_b_id=chunk_b.document_id, chunk_a=chunk_a, chunk_b=chunk_b,
                similarity=round(match.similarity, 4), facts_a=[f.as_dict() for f in facts_a],
                facts_b=[f.as_dict() for f in facts_b], fingerprint=conflict_fingerprint(chunk_a.text, chunk_b.text),
            )
    return list(pairs.values())


def _still_there(pairs: list) -> list:
    """Drop pairs whose chunks or documents went away while the check ran (a new version swapped in, a deletion)."""
    chunk_ids = {c for p in pairs for c in (p.chunk_a_id, p.chunk_b_id) if c is not None}
    alive = set(Chunk.objects.filter(pk__in=chunk_ids).values_list("pk", flat=True))
    document_ids = {d for p in pairs for d in (p.document_a_id, p.document_b_id)}
    documents = set(Document.objects.filter(pk__in=document_ids).values_list("pk", flat=True))
    return [
        p for p in pairs
        if {p.document_a_id, p.document_b_id} <= documents and all(c is None or c in alive for c in (p.chunk_a_id, p.chunk_b_id))
    ]


# --- What the admin sees ------------------------------------------------------------------------------------------


def _dismissed(kind: str) -> QuerySet:
    return Dismissal.objects.filter(kind=kind).values("fingerprint")


def duplicate_pairs_list(*, user) -> QuerySet[DuplicatePair]:
    """Open near-duplicate pairs of documents `user` may read, computed on the documents' current versions."""
    readable = collections_readable(user=user)
    return (
        DuplicatePair.objects.filter(document_a__collection_id__in=readable, document_b__collection_id__in=readable)
        .filter(version_a=F("document_a__indexed_version"), version_b=F("document_b__indexed_version"))
        .exclude(fingerprint__in=_dismissed(Dismissal.Kind.DUPLICATE))
        .select_related("document_a__collection", "document_b__collection", "chunk_a", "chunk_b")
    )


def conflict_pairs_list(*, user) -> QuerySet[ConflictPair]:
    """Open conflicting passage pairs of documents `user` may read."""
    readable = collections_readable(user=user)
    return (
        ConflictPair.objects.filter(document_a__collection_id__in=readable, document_b__collection_id__in=readable)
        .exclude(fingerprint__in=_dismissed(Dismissal.Kind.CONFLICT))
        .select_related("document_a__collection", "document_b__collection", "chunk_a", "chunk_b")
    )


def text_segments(text: str, spans: list[dict]) -> list[tuple[str, bool]]:
    """The text cut into (piece, highlighted) around the given character spans."""
    segments, position = [], 0
    for span in sorted(spans, key=lambda s: s["start"]):
        start, end = max(span["start"], position), span["end"]
        if start >= end:
            continue
        segments += [(text[position:start], False), (text[start:end], True)]
        position = end
    segments.append((text[position:], False))
    return [s for s in segments if s[0]]


def difference_spans(text_a: str, text_b: str) -> tuple[list[dict], list[dict]]:
    """Character spans of the words that differ between two passages (for near-duplicates)."""
    words_a, words_b = list(re.finditer(r"\S+", text_a)), list(re.finditer(r"\S+", text_b))
    matcher = difflib.SequenceMatcher(a=[w.group() for w in words_a], b=[w.group() for w in words_b], autojunk=False)
    spans_a, spans_b = [], []
    for tag, a1, a2, b1, b2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if a2 > a1:
            spans_a.append({"start": words_a[a1].start(), "end": words_a[a2 - 1].end()})
        if b2 > b1:
            spans_b.append({"start": words_b[b1].start(), "end": words_b[b2 - 1].end()})
    return spans_a, spans_b


def pair_dismiss(*, user, kind: str, pair_id: int) -> Dismissal:
    """Mark a duplicate or conflict as a false alarm: it stays hidden while the contents it was found on stay."""
    model = DuplicatePair if kind == Dismissal.Kind.DUPLICATE else ConflictPair
    readable = collections_readable(user=user)
    pair = model.objects.select_related("document_a", "document_b").get(
        pk=pair_id, document_a__collection_id__in=readable, document_b__collection_id__in=readable
    )
    dismissal, _ = Dismissal.objects.get_or_create(
        kind=kind, fingerprint=pair.fingerprint,
        defaults={"dismissed_by": user, "label": f"{pair.document_a.title} / {pair.document_b.title}"[:500]},
    )
    return dismissal


def document_retire(*, user, document_id: int) -> Document:
    """Delete one document of a pair everywhere (its vectors, file and rows); its pairs go with it."""
    document = Document.objects.get(pk=document_id, collection_id__in=collections_readable(user=user))
    kb_services.document_delete(document=document)
    return document
