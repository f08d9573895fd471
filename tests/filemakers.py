"""Real small files of every supported format, built in memory for the tests."""

from __future__ import annotations

import io
import zipfile


def pdf(pages: list[str], *, title: str | None = None) -> bytes:
    from fpdf import FPDF

    document = FPDF()
    if title:
        document.set_title(title)
    document.set_font("helvetica", size=12)
    for text in pages:
        document.add_page()
        document.multi_cell(0, 8, text)
    return bytes(document.output())


def encrypted_pdf(text: str = "Salary bands for 2026.") -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf([text]))))
    writer.encrypt(user_password="secret", owner_password="owner")
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


def docx(*, title: str = "") -> bytes:
    import docx as python_docx

    document = python_docx.Document()
    document.core_properties.title = title
    document.add_heading("Benefits", level=1)
    document.add_paragraph("Health insurance starts on your first day.")
    document.add_heading("Dental", level=2)
    document.add_paragraph("Dental cover includes two cleanings a year.")
    table = document.add_table(rows=3, cols=2)
    for row, (plan, cost) in zip(table.rows, [("Plan", "Monthly cost"), ("Basic", "$20"), ("Plus", "$45")]):
        row.cells[0].text, row.cells[1].text = plan, cost
    document.add_heading("Vision", level=2)
    document.add_paragraph("Glasses are reimbursed up to $150.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def pptx() -> bytes:
    from pptx import Presentation
    from pptx.util import Inches

    presentation = Presentation()
    for number, (title, body, notes) in enumerate(
        [("Quarterly goals", "Ship the mobile app by June.", "Mention the beta testers."), ("Budget", "Travel budget is frozen.", "")], 1
    ):
        slide = presentation.slides.add_slide(presentation.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
        if number == 2:
            table = slide.shapes.add_table(2, 2, Inches(1), Inches(4), Inches(4), Inches(1)).table
            table.cell(0, 0).text, table.cell(0, 1).text = "Team", "Budget"
            table.cell(1, 0).text, table.cell(1, 1).text = "Sales", "$10k"
    out = io.BytesIO()
    presentation.save(out)
    return out.getvalue()


def xlsx() -> bytes:
    import openpyxl

    workbook = openpyxl.Workbook()
    staff = workbook.active
    staff.title = "Staff"
    for row in [("Name", "Office", "Extension"), ("Ada", "London", 101), (None, None, None), ("Grace", "Boston", 102)]:
        staff.append(row)
    rooms = workbook.create_sheet("Rooms")
    for row in [("Room", "Seats"), ("Orion", 12)]:
        rooms.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def csv_bytes() -> bytes:
    return b"Name,Office,Extension\nAda,London,101\nGrace,Boston,102\n"


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


def zip_of(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def encrypted_office() -> bytes:
    """The start of an OLE2 container naming the streams a password-protected .docx has (enough for detection)."""
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504 + "EncryptionInfo".encode("utf-16-le") + b"\x00" * 64
