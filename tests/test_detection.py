"""A file's kind comes from its content; the name only breaks ties between text formats, and a name that lies about
a binary format gets a message saying so."""

import codecs

import pytest

from ingestion.detection import decode_text, detect_kind, sniff_delimiter
from ingestion.types import CorruptDocument, EmptyDocument, EncryptedDocument, UnsupportedType

from . import filemakers


def refusal(data: bytes, filename: str, error: type[Exception]) -> str:
    with pytest.raises(error) as raised:
        detect_kind(data, filename=filename)
    message = str(raised.value)
    assert filename in message
    return message


def test_a_word_document_named_txt_is_detected_as_docx():
    assert detect_kind(filemakers.docx(), filename="notes.txt") == "docx"


def test_office_files_are_told_apart_by_their_parts_not_their_names():
    assert detect_kind(filemakers.pptx(), filename="deck.docx") == "pptx"
    assert detect_kind(filemakers.xlsx(), filename="sheet.zip") == "xlsx"


def test_a_pdf_is_detected_by_its_signature_whatever_its_name():
    assert detect_kind(filemakers.pdf(["Hello."]), filename="scan.jpg") == "pdf"


def test_a_zip_of_ordinary_files_is_an_archive_to_unpack():
    assert detect_kind(filemakers.zip_of({"a.txt": b"x", "b.md": b"# B"}), filename="bundle.bin") == "zip"


def test_text_named_pdf_is_refused_with_a_message_naming_the_mismatch():
    message = refusal(b"Quarterly numbers, typed up by hand.", "report.pdf", UnsupportedType)
    assert "not a PDF" in message and "plain text" in message and "upload the original" in message


def test_a_web_page_saved_under_an_office_name_is_called_a_web_page():
    page = b"<!DOCTYPE html><html><body><h1>Sign in</h1></body></html>"
    message = refusal(page, "budget.xlsx", UnsupportedType)
    assert "not an Excel workbook" in message and "web page" in message and "download the real file" in message


def test_an_image_named_pdf_names_both_the_promise_and_the_content():
    message = refusal(filemakers.png(), "invoice.pdf", UnsupportedType)
    assert "not a PDF" in message and "PNG image" in message and "OCR" in message


@pytest.mark.parametrize(
    ("data", "filename", "what"),
    [
        (filemakers.png(), "photo.png", "PNG image"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64), "photo.jpg", "JPEG image"),
        (b"GIF89a" + bytes(64), "anim.gif", "GIF image"),
        (b"II*\x00" + bytes(64), "scan.tif", "TIFF image"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(64), "pic.webp", "WebP image"),
        (filemakers.elf(), "tool", "program"),
        (b"MZ\x90\x00\x03\x00\x00\x00" + bytes(120), "setup.exe", "Windows program"),
        (b"\x00\x00\x00\x18ftypmp42" + bytes(64), "talk.mp4", "video"),
        (b"ID3\x04\x00" + bytes(64), "song.mp3", "audio"),
        (b"\x1f\x8b\x08\x00" + bytes(64), "logs.tar.gz", "gzip"),
    ],
)
def test_images_programs_media_and_other_archives_are_refused_by_what_they_are(data, filename, what):
    assert what in refusal(data, filename, UnsupportedType)


def test_random_binary_bytes_are_refused_with_the_list_of_readable_formats():
    message = refusal(bytes(range(256)) * 16, "random.bin", UnsupportedType)
    assert "binary" in message and "Lantern reads PDF" in message


def test_text_that_happens_to_start_with_mz_is_still_text():
    assert detect_kind(b"MZ-7 release notes\n\nAll good.", filename="notes") == "text"


def test_an_svg_image_is_refused_even_though_it_is_text():
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><text>Hi</text></svg>'
    assert "SVG image" in refusal(svg, "logo.svg", UnsupportedType)


def test_an_empty_file_is_empty():
    assert "empty" in refusal(b"", "empty.txt", EmptyDocument)


@pytest.mark.parametrize("data", [b"   \n\t\r\n  ", codecs.BOM_UTF8 + b"  \n", "  \n ".encode("utf-16")])
def test_a_file_of_blank_space_is_empty(data):
    assert "empty" in refusal(data, "blank.md", EmptyDocument)


def test_a_password_protected_office_file_is_encrypted_not_legacy():
    # Password-protected OOXML is an OLE2 container; detection only needs the signature and the UTF-16LE
    # "EncryptionInfo" stream name (see the heuristic's comment in ingestion.detection).
    message = refusal(filemakers.encrypted_office(), "locked.docx", EncryptedDocument)
    assert "password-protected" in message and "unlocked copy" in message


@pytest.mark.parametrize(
    ("stream", "filename", "save_as"),
    [
        ("WordDocument", "old.doc", ".docx"),
        ("Workbook", "old.xls", ".xlsx"),
        ("PowerPoint Document", "old.ppt", ".pptx"),
    ],
)
def test_legacy_office_files_are_refused_with_the_format_to_save_as(stream, filename, save_as):
    assert f"save it as {save_as}" in refusal(filemakers.legacy_office(stream), filename, UnsupportedType)


def test_a_broken_zip_named_docx_is_damaged():
    message = refusal(b"PK\x03\x04 this is not really a zip", "broken.docx", CorruptDocument)
    assert "damaged" in message and "upload the original" in message


def test_a_zip_named_docx_without_the_word_parts_is_damaged_not_an_archive():
    assert "damaged" in refusal(filemakers.zip_of({"readme.txt": b"hi"}), "notes.docx", CorruptDocument)


def test_an_opendocument_file_is_refused_with_what_to_save_it_as():
    odt = filemakers.zip_of({"mimetype": b"application/vnd.oasis.opendocument.text", "content.xml": b"<x/>"})
    assert "save it as .docx" in refusal(odt, "minutes.odt", UnsupportedType)


def test_html_is_recognised_by_its_doctype_whatever_its_name():
    assert detect_kind(b"\n<!DOCTYPE html>\n<html><body><p>Hi</p></body></html>", filename="page.txt") == "html"


def test_html_is_recognised_by_dense_tags_at_the_start():
    fragment = b"<div><h2>Opening hours</h2><p>Monday to Friday.</p><p>Closed on Sunday.</p></div>"
    assert detect_kind(fragment, filename="export") == "html"


def test_a_markdown_readme_opening_with_an_html_banner_stays_markdown():
    readme = b'<p align="center"><img src="logo.png"></p>\n<h1 align="center">Lantern</h1>\n\n## Install\n\nRun it.'
    assert detect_kind(readme, filename="README.md") == "markdown"


def test_markdown_and_plain_text_are_told_apart_by_the_extension():
    assert detect_kind(b"# Title\n\nBody.", filename="guide.markdown") == "markdown"
    assert detect_kind(b"# Title\n\nBody.", filename="guide.txt") == "text"


@pytest.mark.parametrize(
    ("data", "filename"),
    [
        (filemakers.csv_bytes(), "people.csv"),
        (filemakers.csv_bytes(";"), "people.csv"),
        (filemakers.csv_bytes("\t"), "people.tsv"),
        (b'Name,Note\nAda,"Likes tea, not coffee"\nGrace,"Wrote\na compiler"\n', "quoted.csv"),
    ],
)
def test_delimited_rows_named_csv_or_tsv_are_csv(data, filename):
    assert detect_kind(data, filename=filename) == "csv"


def test_prose_named_csv_is_read_as_text():
    prose = b"This export failed half way.\nPlease ask IT for a new one\n"
    assert detect_kind(prose, filename="export.csv") == "text"


def test_utf16_text_with_a_bom_is_text():
    assert detect_kind("Caf\u00e9 opens at 8.".encode("utf-16"), filename="notes.txt") == "text"


def test_a_text_file_mentioning_the_pdf_signature_is_not_a_pdf():
    assert detect_kind(b"Our files start with %PDF-1.7 as the spec says.", filename="notes.txt") == "text"


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ("Caf\u00e9\r\nBar\rEnd".encode(), "Caf\u00e9\nBar\nEnd"),
        (codecs.BOM_UTF8 + "na\u00efve".encode(), "na\u00efve"),
        ("\u00fcber".encode("utf-16-le").join([codecs.BOM_UTF16_LE, b""]), "\u00fcber"),
        ("\u00fcber".encode("utf-16-be").join([codecs.BOM_UTF16_BE, b""]), "\u00fcber"),
        ("\u201cquoted\u201d \u20ac5".encode("cp1252"), "\u201cquoted\u201d \u20ac5"),
        (b"\x81 odd byte", "\x81 odd byte"),
    ],
)
def test_text_is_decoded_from_utf8_utf16_or_windows_1252_with_unix_newlines(data, text):
    assert decode_text(data) == text


def test_the_delimiter_is_the_one_giving_steady_columns():
    assert sniff_delimiter("a;b;c\n1;2,5;3\n4;5;6\n") == ";"
    assert sniff_delimiter("just one column\nof words\n") is None
