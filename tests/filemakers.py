"""Real small files of every supported format (and of some unsupported ones), built in memory for the tests.

Each function returns the file's bytes. The texts are fixed, so tests can assert on them; functions that take
arguments default to the same fixed content.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Mapping, Sequence

OLE2_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


# --- PDF ----------------------------------------------------------------------------------------------------------


def pdf(pages: Sequence[str], *, title: str | None = None) -> bytes:
    """One page per string; blank lines ("\\n\\n") separate paragraphs, which wrap at the page width."""
    from fpdf import FPDF

    document = FPDF()
    if title:
        document.set_title(title)
    document.set_font("helvetica", size=12)
    for text in pages:
        document.add_page()
        for paragraph in text.split("\n\n"):
            document.multi_cell(0, 8, paragraph, new_x="LMARGIN", new_y="NEXT")
            document.ln(4)
    return bytes(document.output())


def pdf_lines(lines: Sequence[str]) -> bytes:
    """One page with exactly these lines, as a typesetter broke them (for hyphenation and line-joining)."""
    from fpdf import FPDF

    document = FPDF()
    document.set_font("helvetica", size=11)
    document.add_page()
    for line in lines:
        document.cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(document.output())


def encrypted_pdf(text: str = "Salary bands for 2026.", *, user_password: str = "secret") -> bytes:
    """A PDF encrypted with pypdf (RC4-128). With user_password="" anyone may open it (owner password only)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf([text]))))
    writer.encrypt(user_password=user_password, owner_password="owner")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def scanned_pdf() -> bytes:
    """A page with only a drawing on it, as a scan without OCR has only an image."""
    from fpdf import FPDF

    document = FPDF()
    document.add_page()
    document.rect(20, 20, 120, 80, style="F")
    return bytes(document.output())


def truncated_pdf() -> bytes:
    """The first 300 bytes of a real PDF: a header and the start of its first object, nothing else."""
    return pdf(["Truncated"])[:300]


# --- Office -------------------------------------------------------------------------------------------------------


def docx(*, title: str = "") -> bytes:
    """Benefits > Dental > table of plans > Vision; a bulleted list under Benefits."""
    import docx as python_docx

    document = python_docx.Document()
    document.core_properties.title = title
    document.add_heading("Benefits", level=1)
    document.add_paragraph("Health insurance starts on your first day.")
    document.add_paragraph("Eye tests are free", style="List Bullet")
    document.add_paragraph("Gym discount of 20%", style="List Bullet")
    document.add_heading("Dental", level=2)
    document.add_paragraph("Dental cover includes two cleanings a year.")
    table = document.add_table(rows=3, cols=2)
    for row, (plan, cost) in zip(table.rows, [("Plan", "Monthly cost"), ("Basic", "$20"), ("Plus", "$45")]):
        row.cells[0].text, row.cells[1].text = plan, cost
    document.add_heading("Vision", level=2)
    document.add_paragraph("Glasses are reimbursed up to $150.")
    return _saved(document)


def pptx() -> bytes:
    """Two slides: "Quarterly goals" (body, notes) and "Budget" (body, a Team/Budget table)."""
    from pptx import Presentation
    from pptx.util import Inches

    presentation = Presentation()
    slides = [
        ("Quarterly goals", "Ship the mobile app by June.", "Mention the beta testers."),
        ("Budget", "Travel budget is frozen.", ""),
    ]
    for number, (title, body, notes) in enumerate(slides, start=1):
        slide = presentation.slides.add_slide(presentation.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
        if number == 2:
            table = slide.shapes.add_table(2, 2, Inches(1), Inches(4), Inches(4), Inches(1)).table
            table.cell(0, 0).text, table.cell(0, 1).text = "Team", "Budget"
            table.cell(1, 0).text, table.cell(1, 1).text = "Sales", "$10k"
    return _saved(presentation)


def xlsx(sheets: Mapping[str, Sequence[Sequence[object]]] | None = None) -> bytes:
    """By default: "Staff" (Name/Office/Extension, an empty row between Ada and Grace) and "Rooms"."""
    import openpyxl

    sheets = sheets or {
        "Staff": [
            ("Name", "Office", "Extension"),
            ("Ada", "London", 101),
            (None, None, None),
            ("Grace", "Boston", 102),
        ],
        "Rooms": [("Room", "Seats"), ("Orion", 12)],
    }
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(list(row))
    return _saved(workbook)


def _saved(document: object) -> bytes:
    out = io.BytesIO()
    document.save(out)  # type: ignore[attr-defined]  # python-docx, python-pptx and openpyxl all have save()
    return out.getvalue()


def encrypted_office() -> bytes:
    """The start of an OLE2 container naming the streams a password-protected .docx has (enough for detection)."""
    return OLE2_SIGNATURE + b"\x00" * 504 + "EncryptionInfo".encode("utf-16-le") + b"\x00" * 64


def legacy_office(stream: str = "WordDocument") -> bytes:
    """The start of an OLE2 container naming the main stream of a legacy .doc ("Workbook": .xls)."""
    return OLE2_SIGNATURE + b"\x00" * 504 + stream.encode("utf-16-le") + b"\x00" * 64


# --- text formats -------------------------------------------------------------------------------------------------


def csv_bytes(delimiter: str = ",") -> bytes:
    rows = [("Name", "Office", "Extension"), ("Ada", "London", "101"), ("Grace", "Boston", "102")]
    return "".join(delimiter.join(row) + "\n" for row in rows).encode()


def html() -> bytes:
    return b"""<!doctype html><html><head><title>Expense policy</title><style>.x{color:red}</style>
<script>document.write('tracking pixel')</script></head><body>
<header>Intranet header</header><nav><a href="/">Home</a> Site menu</nav>
<main><h1>Expenses</h1><p>Submit receipts within 30 days.</p><h2>Meals</h2><p>Meals are capped at $60 per day.</p>
<table><tr><th>Item</th><th>Limit</th></tr><tr><td>Hotel</td><td>$200</td></tr></table>
<ul><li>Keep receipts</li><li>Use the corporate card</li></ul></main>
<aside>Related links</aside><footer>Copyright footer</footer></body></html>"""


def markdown() -> bytes:
    return b"""---
title: Engineering guide
layout: page
---
Intro paragraph before any heading.

# Engineering

## Code review

Every change needs one approval.

```python
# not a heading
print("hello")
```

| Service | Owner |
|---|---|
| API | Team A |

### Hotfixes

Hotfixes may be merged with a post-hoc review.
"""


# --- archives and other binaries ----------------------------------------------------------------------------------


def zip_of(entries: Mapping[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def png(width: int = 2, height: int = 2) -> bytes:
    """A valid grey PNG image."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(pixels)) + chunk(b"IEND", b"")


def elf() -> bytes:
    """The header of a 64-bit Linux executable."""
    return b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + struct.pack("<HHI", 2, 62, 1) + b"\x00" * 40
