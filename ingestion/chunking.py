"""Structure-aware chunking measured with the embedding model's own tokenizer.

A chunk never crosses into a new section once it holds a useful amount of text, keeps paragraphs and tables whole
when they fit, overlaps its neighbour by a few sentences, and is never longer than the model reads (title and
heading path included), so nothing is silently truncated at embedding time.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass, field

from django.conf import settings

from . import embedding
from .types import Block, ChunkDraft, ParsedDocument

BLOCK_SEPARATOR = "\n\n"
# Below this many tokens a chunk absorbs the next section instead of standing alone (tiny chunks embed poorly).
MIN_CHUNK_TOKENS = 64
# The title and heading path may use at most this many tokens of every chunk's budget.
MAX_PREFIX_TOKENS = 48
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n+")


@dataclass
class Unit:
    """A sentence, table row or line of one block, located in the document's extracted text."""

    start: int
    end: int
    tokens: int
    block: int
    page: int | None
    heading_path: tuple[str, ...]
    kind: str
    table_header: str = ""  # repeated above the rows when a table is split over chunks


@dataclass(frozen=True)
class BlockTokens:
    """Where a block's word pieces fall in the document text, so a sentence or row of it is counted, not re-tokenized."""

    starts: list[int]
    ends: list[int]

    @classmethod
    def of(cls, encoding, offset: int) -> BlockTokens:
        return cls([offset + s for s, _ in encoding.offsets], [offset + e for _, e in encoding.offsets])

    def count(self, start: int, end: int) -> int | None:
        """Word pieces inside [start, end); None when a piece straddles an edge (that span must be tokenized alone).

        Word pieces never cross whitespace, and sentences and rows are cut at whitespace, so this equals what the
        tokenizer gives for the span on its own.
        """
        first, last = bisect_left(self.starts, start), bisect_left(self.starts, end)
        if (first > 0 and self.ends[first - 1] > start) or (last > first and self.ends[last - 1] > end):
            return None
        return last - first


@dataclass
class ChunkedDocument:
    text: str  # the extracted text that char spans point into
    drafts: list[ChunkDraft] = field(default_factory=list)


def extracted_text(blocks: list[Block]) -> tuple[str, list[tuple[int, int]]]:
    spans, parts, offset = [], [], 0
    for block in blocks:
        parts.append(block.text)
        spans.append((offset, offset + len(block.text)))
        offset += len(block.text) + len(BLOCK_SEPARATOR)
    return BLOCK_SEPARATOR.join(parts), spans


def embed_prefix(title: str, heading_path: tuple[str, ...]) -> str:
    headings = [h for h in heading_path if h and h != title]
    lines = [title] + ([" > ".join(headings)] if headings else [])
    prefix = "\n".join(line for line in lines if line)
    tok = embedding.tokenizer().encode(prefix, add_special_tokens=False)
    if len(tok.ids) > MAX_PREFIX_TOKENS:
        prefix = prefix[: tok.offsets[MAX_PREFIX_TOKENS - 1][1]]
    return prefix + "\n" if prefix else ""


class Chunker:
    def __init__(self, *, title: str, max_tokens: int | None = None, overlap_tokens: int | None = None):
        self.title = title
        # Two of the model's positions go to its [CLS] and [SEP] tokens.
        self.max_tokens = max_tokens or embedding.max_sequence_tokens() - 2
        self.overlap_tokens = settings.CHUNK_OVERLAP_TOKENS if overlap_tokens is None else overlap_tokens
        self._prefix_cache: dict[tuple[str, ...], tuple[str, int]] = {}

    # -- budget ----------------------------------------------------------------------------------
    def prefix(self, heading_path: tuple[str, ...]) -> tuple[str, int]:
        if heading_path not in self._prefix_cache:
            text = embed_prefix(self.title, heading_path)
            self._prefix_cache[heading_path] = (text, embedding.count_tokens(text))
        return self._prefix_cache[heading_path]

    def budget(self, heading_path: tuple[str, ...]) -> int:
        return self.max_tokens - self.prefix(heading_path)[1]

    # -- units -------------------------------------------------------------------------------------
    def units_of(self, index: int, block: Block, span: tuple[int, int], text: str, encoding=None) -> list[Unit]:
        """The block's sentences (or table rows), each short enough for a chunk; `encoding`: the block's tokens."""
        start, end = span
        if encoding is None:
            encoding = embedding.tokenizer().encode(text[start:end], add_special_tokens=False)
        tokens = BlockTokens.of(encoding, start)
        whole = Unit(start, end, len(encoding.ids), index, block.page, block.heading_path, block.kind)
        if block.kind == "table":
            return self._table_rows(whole, text, tokens)
        if whole.tokens <= self.overlap_tokens or block.kind == "heading":
            return [whole]
        return [piece for sentence in self._sentences(whole, text, tokens) for piece in self._fit(sentence, text)]

    def _sentences(self, unit: Unit, text: str, tokens: BlockTokens) -> list[Unit]:
        pieces, cursor = [], unit.start
        for match in _SENTENCE_END.finditer(text, unit.start, unit.end):
            if match.start() > cursor:
                pieces.append((cursor, match.start()))
            cursor = match.end()
        if cursor < unit.end:
            pieces.append((cursor, unit.end))
        return [self._sub_unit(unit, s, e, text, tokens) for s, e in pieces]

    def _table_rows(self, unit: Unit, text: str, tokens: BlockTokens) -> list[Unit]:
        if unit.tokens <= self.budget(unit.heading_path):
            return [unit]
        lines = [(m.start(), m.end()) for m in re.finditer(r"[^\n]+", text[unit.start : unit.end])]
        lines = [(unit.start + s, unit.start + e) for s, e in lines]
        header_lines = 2 if len(lines) > 1 and set(text[lines[1][0] : lines[1][1]]) <= set("|-: ") else 1
        header = "\n".join(text[s:e] for s, e in lines[:header_lines])
        rows = [self._sub_unit(unit, s, e, text, tokens) for s, e in lines]
        for row in rows[header_lines:]:
            row.table_header = header
        return [piece for row in rows for piece in self._fit(row, text)]

    def _fit(self, unit: Unit, text: str) -> list[Unit]:
        """Split a unit that alone exceeds the budget at word-piece boundaries."""
        limit = self.budget(unit.heading_path) - (embedding.count_tokens(unit.table_header) + 1 if unit.table_header else 0)
        if unit.tokens <= limit:
            return [unit]
        offsets = embedding.tokenizer().encode(text[unit.start : unit.end], add_special_tokens=False).offsets
        pieces = []
        for first in range(0, len(offsets), limit):
            last = min(first + limit, len(offsets)) - 1
            pieces.append(self._sub_unit(unit, unit.start + offsets[first][0], unit.start + offsets[last][1], text))
        return pieces

    @staticmethod
    def _sub_unit(parent: Unit, start: int, end: int, text: str, tokens: BlockTokens | None = None) -> Unit:
        count = tokens.count(start, end) if tokens else None
        if count is None:  # a piece cut inside a word tokenizes differently on its own
            count = embedding.count_tokens(text[start:end])
        return Unit(start, end, count, parent.block, parent.page, parent.heading_path, parent.kind, parent.table_header)

    # -- packing -------------------------------------------------------------------------------------
    def chunk(self, parsed: ParsedDocument) -> ChunkedDocument:
        text, spans = extracted_text(parsed.blocks)
        # One batched call tokenizes every block (in parallel, in Rust); sentences are then counted from its offsets.
        encodings = embedding.tokenizer().encode_batch([text[s:e] for s, e in spans], add_special_tokens=False)
        groups = [self.units_of(i, b, spans[i], text, encodings[i]) for i, b in enumerate(parsed.blocks)]
        chunks: list[list[Unit]] = []
        current: list[Unit] = []
        for block, units in zip(parsed.blocks, groups):
            if block.kind == "heading":
                if current and (self._size(current) >= MIN_CHUNK_TOKENS or not self._fits(current, units)):
                    chunks.append(current)
                    current = []
                if current:  # a small section runs on into the next one, its heading kept as a line
                    current += units
                continue
            if self._fits(current, units):
                current += units
                continue
            if current and self._fits([], units):  # the block fits a chunk of its own: keep it whole
                chunks.append(current)
                current = self._overlap(current, units) + units
                continue
            for unit in units:  # too long for any chunk: fill sentence by sentence
                if current and not self._fits(current, [unit]):
                    chunks.append(current)
                    current = self._overlap(current, [unit])
                current.append(unit)
        if current:
            chunks.append(current)
        kept = [c for c in chunks if self._content(c)]
        bodies = [self._body(units, text) for units in kept]
        counts = [len(e.ids) for e in embedding.tokenizer().encode_batch([b for _, _, b in bodies], add_special_tokens=False)]
        drafts = [self._draft(i, units, body, count) for i, (units, body, count) in enumerate(zip(kept, bodies, counts))]
        return ChunkedDocument(text=text, drafts=drafts)

    @staticmethod
    def _content(units: list[Unit]) -> list[Unit]:
        return [u for u in units if u.kind != "heading"]

    def _size(self, units: list[Unit]) -> int:
        header = units[0].table_header if units else ""
        return sum(u.tokens for u in units) + (embedding.count_tokens(header) if header else 0)

    def _fits(self, current: list[Unit], extra: list[Unit]) -> bool:
        units = current + extra
        content = self._content(units)
        path = content[0].heading_path if content else units[0].heading_path
        return self._size(units) <= self.budget(path)

    def _overlap(self, previous: list[Unit], following: list[Unit]) -> list[Unit]:
        """The last sentences of the previous chunk, when they belong to the same section as what follows."""
        carried: list[Unit] = []
        for unit in reversed(previous):
            if unit.kind in ("heading", "table") or unit.heading_path != following[0].heading_path:
                break
            if self._size(carried) + unit.tokens > self.overlap_tokens:
                break
            carried.insert(0, unit)
        while carried and not self._fits(carried, following):
            carried.pop(0)
        return carried

    def _body(self, units: list[Unit], text: str) -> tuple[int, int, str]:
        """The chunk's span in the extracted text and its text (a split table's header repeated on top)."""
        start, end = units[0].start, units[-1].end
        if units[0].kind == "heading":
            start = self._content(units)[0].start
        body = text[start:end]
        if units[0].table_header and not body.startswith(units[0].table_header):
            body = units[0].table_header + "\n" + body
        return start, end, body

    def _draft(self, ordinal: int, units: list[Unit], body: tuple[int, int, str], token_count: int) -> ChunkDraft:
        content = self._content(units)
        start, end, body = body
        path = content[0].heading_path
        pages = [u.page for u in units if u.page is not None]
        return ChunkDraft(
            ordinal=ordinal,
            text=body,
            embed_text=self.prefix(path)[0] + body,
            heading_path=path,
            page_start=min(pages) if pages else None,
            page_end=max(pages) if pages else None,
            char_start=start,
            char_end=end,
            token_count=token_count,
        )


def chunk_document(parsed: ParsedDocument, *, title: str) -> ChunkedDocument:
    return Chunker(title=title).chunk(parsed)
