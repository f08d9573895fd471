"""Tables of records (CSV and TSV here; spreadsheets in xlsx.py): every row carries its header, so a chunk of rows
stands on its own: "Name: Ada; Office: London; Extension: 101".

The header is the first row with two or more values. A single-value row before it is a title or a note and is kept
as written; a table with a header but no data rows still yields "Columns: a; b; c".
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath

from ..detection import decode_text, sniff_delimiter
from ..types import Block, ParsedDocument, TooLarge
from .blocks import damaged, record_text, require_blocks, squash

MAX_CELLS = 2_000_000


class CellBudget:
    """Counts the cells read from one file and stops past MAX_CELLS, so one huge sheet cannot stall a worker."""

    def __init__(self, *, filename: str, limit: int | None = None) -> None:
        self.filename = filename
        self.limit = MAX_CELLS if limit is None else limit
        self.used = 0

    def spend(self, cells: int) -> None:
        self.used += cells
        if self.used > self.limit:
            raise TooLarge(
                f"{self.filename} has more than {self.limit:,} cells, more than Lantern indexes from one file; "
                "split it into smaller files, or delete the sheets and columns that need not be searchable."
            )


def parse(data: bytes, *, filename: str) -> ParsedDocument:
    """CSV or TSV; the delimiter is sniffed from the first rows."""
    text = decode_text(data)
    is_tsv = PurePosixPath(filename).suffix.lower() == ".tsv"
    delimiter = sniff_delimiter(text, prefer_tab=is_tsv) or ("\t" if is_tsv else ",")
    # No field is longer than the file; the csv module's default limit (128 KiB) would refuse long text cells.
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    rows = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        blocks = rows_to_blocks(rows, heading_path=(), budget=CellBudget(filename=filename))
    except csv.Error as error:
        raise damaged(filename, error, advice="check that it is valid CSV, or export it again") from error
    return ParsedDocument(kind="csv", blocks=require_blocks(blocks, filename=filename))


def rows_to_blocks(
    rows: Iterable[Sequence[object]], *, heading_path: tuple[str, ...], budget: CellBudget
) -> list[Block]:
    """One block per non-empty row ("Header: value; ..."); notes before the header kept as they are."""
    header: list[str] | None = None
    blocks: list[Block] = []
    records = 0
    for row in rows:
        budget.spend(len(row))
        values = _trimmed([cell_text(value) for value in row])
        if not values:
            continue
        if header is None and sum(1 for value in values if value) == 1:
            blocks.append(Block(next(value for value in values if value), heading_path=heading_path))
        elif header is None:
            header = values
        else:
            blocks.append(Block(record_text(header, values), heading_path=heading_path))
            records += 1
    if header is not None and not records:  # an empty template still tells what it tracks
        blocks.append(Block("Columns: " + "; ".join(value for value in header if value), heading_path=heading_path))
    return blocks


def _trimmed(values: list[str]) -> list[str]:
    """The row without its trailing empty cells: [] for a row with no value at all."""
    while values and not values[-1]:
        values.pop()
    return values


def cell_text(value: object) -> str:
    """A cell as a person reads it: whole floats without '.0', dates in ISO form, whitespace squashed."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else format(value, ".15g")
    if isinstance(value, dt.datetime):
        if value.time() == dt.time():
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds" if value.second else "minutes")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return squash(str(value))
