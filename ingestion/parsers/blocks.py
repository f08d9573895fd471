"""What the format parsers share: the heading path, table and record rendering, and the common errors."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..types import Block, CorruptDocument, EmptyDocument

_REASON_CHARS = 160


class HeadingPath:
    """The headings enclosing the current point of a document read top to bottom, outermost first."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []

    def enter(self, level: int, text: str) -> tuple[str, ...]:
        """Open a heading of `level` (smaller is outer); returns the path of the section it opens, itself included."""
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, text))
        return self.path

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(text for _, text in self._stack)


def squash(text: str) -> str:
    """Runs of whitespace, newlines included, as one space."""
    return " ".join(text.split())


def markdown_table(rows: Iterable[Sequence[str]]) -> str:
    """Rows as Markdown pipe rows, the first row as the header; empty rows dropped; '' when none is left."""
    cleaned = [[_table_cell(cell) for cell in row] for row in rows]
    cleaned = [row for row in cleaned if any(row)]
    if not cleaned:
        return ""
    width = max(len(row) for row in cleaned)
    padded = [row + [""] * (width - len(row)) for row in cleaned]
    lines = [_pipe_row(padded[0]), _pipe_row(["---"] * width)]
    return "\n".join(lines + [_pipe_row(row) for row in padded[1:]])


def _table_cell(text: str) -> str:
    return squash(text).replace("|", "\\|")


def _pipe_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def record_text(header: Sequence[str], values: Sequence[str]) -> str:
    """One row as 'Header: value; Header: value' (empty values skipped), so it reads on its own."""
    return "; ".join(f"{column_label(header, index)}: {value}" for index, value in enumerate(values) if value)


def column_label(header: Sequence[str], index: int) -> str:
    label = header[index] if index < len(header) else ""
    return label or f"Column {index + 1}"


def require_blocks(blocks: list[Block], *, filename: str) -> list[Block]:
    """`blocks`, unless they hold nothing but headings: then EmptyDocument."""
    if not any(block.kind != "heading" for block in blocks):
        raise EmptyDocument(f"{filename} contains no text to index; check that it is the document you meant to upload.")
    return blocks


def damaged(filename: str, error: BaseException, *, advice: str = "") -> CorruptDocument:
    """The error for a file its library could not read, with the library's reason kept short."""
    reason = squash(str(error)) or type(error).__name__
    if len(reason) > _REASON_CHARS:
        reason = reason[: _REASON_CHARS - 1] + "…"
    advice = advice or "open it in the program that made it, save a fresh copy and upload that"
    return CorruptDocument(f"{filename} is damaged and could not be read ({reason}); {advice}.")


def clean_title(title: object) -> str | None:
    text = squash(title) if isinstance(title, str) else ""
    return text or None
