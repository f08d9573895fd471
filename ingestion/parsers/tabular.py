"""Spreadsheets and CSV: every row carries its header ("Header: value; ..."), so a chunk of rows stands alone."""

from __future__ import annotations

import csv
import io
import zipfile

from django.conf import settings

from ..detection import decode_text
from ..types import Block, CorruptDocument, ParsedDocument, TooLarge
from .text import require_blocks

MAX_CELLS = 2_000_000


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return " ".join(str(value).split())


def rows_to_blocks(rows, *, heading_path: tuple[str, ...], filename: str) -> list[Block]:
    header, blocks, cells, data_rows = None, [], 0, 0
    for row in rows:
        values = [_cell(v) for v in row]
        cells += len(values)
        if cells > MAX_CELLS:
            raise TooLarge(f"{filename} has more than {MAX_CELLS:,} cells; split it or export the part that matters.")
        if not any(values):
            continue
        if header is None and sum(1 for v in values if v) == 1:
            blocks.append(Block(next(v for v in values if v), heading_path=heading_path))  # a title or a note, not a header
            continue
        if header is None:
            header = [v or f"Column {i + 1}" for i, v in enumerate(values)]
            continue
        pairs = [f"{header[i] if i < len(header) else f'Column {i + 1}'}: {v}" for i, v in enumerate(values) if v]
        blocks.append(Block("; ".join(pairs), heading_path=heading_path))
        data_rows += 1
    if header and not data_rows:  # an empty template still tells what it tracks
        blocks.append(Block("Columns: " + "; ".join(header), heading_path=heading_path))
    return blocks


def parse_xlsx(data: bytes, filename: str) -> ParsedDocument:
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError) as error:
        raise CorruptDocument(f"{filename} is damaged and could not be read ({error}); save it again and re-upload.") from error
    blocks = []
    try:
        for sheet in workbook.worksheets:
            rows = rows_to_blocks(sheet.iter_rows(values_only=True), heading_path=(sheet.title,), filename=filename)
            if rows:
                blocks += [Block(sheet.title, kind="heading", heading_path=(sheet.title,)), *rows]
    finally:
        workbook.close()
    title = (workbook.properties.title or "").strip() or None if workbook.properties else None
    return ParsedDocument(kind="xlsx", blocks=require_blocks(blocks, filename), title=title)


def parse_csv(data: bytes, filename: str) -> ParsedDocument:
    text = decode_text(data)
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    csv.field_size_limit(max(csv.field_size_limit(), settings.MAX_UPLOAD_MB * 1024 * 1024))
    try:
        blocks = rows_to_blocks(csv.reader(io.StringIO(text), dialect), heading_path=(), filename=filename)
    except csv.Error as error:
        raise CorruptDocument(f"{filename} is not valid CSV ({error}); check the file.") from error
    return ParsedDocument(kind="csv", blocks=require_blocks(blocks, filename))
