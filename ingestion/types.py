"""The typed hand-offs between ingestion stages: parse -> chunk -> embed -> index."""

from __future__ import annotations

from dataclasses import dataclass, field


class IngestionError(Exception):
    """A permanent problem with one document. `str(error)` is shown to the admin as is, so it says what to do."""


class UnsupportedType(IngestionError):
    pass


class CorruptDocument(IngestionError):
    pass


class EncryptedDocument(IngestionError):
    pass


class EmptyDocument(IngestionError):
    """No text could be extracted (an empty file, or a scanned PDF without a text layer)."""


class TooLarge(IngestionError):
    pass


@dataclass(frozen=True)
class Block:
    """One structural unit of a document: a paragraph, a heading line, a table, a list item, a code block."""

    text: str
    kind: str = "paragraph"  # paragraph | heading | table | list | code
    page: int | None = None  # 1-based; None for formats without pages
    heading_path: tuple[str, ...] = ()


@dataclass
class ParsedDocument:
    kind: str  # pdf | docx | pptx | xlsx | csv | html | markdown | text
    blocks: list[Block]
    title: str | None = None
    page_count: int | None = None


@dataclass
class ChunkDraft:
    ordinal: int
    text: str
    embed_text: str  # what the embedding model sees: title and heading path, then the text
    heading_path: tuple[str, ...] = ()
    page_start: int | None = None
    page_end: int | None = None
    char_start: int = 0
    char_end: int = 0
    token_count: int = 0


@dataclass
class SparseVector:
    indices: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
