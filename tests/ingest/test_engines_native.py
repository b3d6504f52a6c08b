"""The native engines (text, calamine, tesseract, zip) on real corpus files and small generated inputs."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import pytest

from docpipe.config import IngestConfig
from docpipe.contracts import ElementKind
from docpipe.ingest.engines import calamine_engine, tesseract_engine, text_engine, zip_engine
from docpipe.ingest.extraction import Extraction, ExtractionError, assemble
from tests.ingest.hostile_files import big_text

CFG = IngestConfig()
PARAGRAPHS = "A paragraph long enough to count as a real document member.\n\nA second paragraph follows it.\n"


def _text(extraction: Extraction) -> str:
    return assemble(extraction.blocks)[0]


def _of_kind(extraction: Extraction, kind: ElementKind) -> list:
    return [b for b in extraction.blocks if b.kind == kind]


def _zip(path: Path, members: list[tuple[str, bytes | str]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


# --- text engine --------------------------------------------------------------------------------


def test_utf16_be_without_bom_is_decoded(corpus):
    ex = text_engine.extract(corpus / "txt" / "fake-text-utf-16-be.txt", "txt", CFG)
    assert [b.text for b in ex.blocks][:2] == ["This is a test document to use for unit tests.", "Doylestown, PA 18901"]
    assert ex.pages is None and not ex.warnings


def test_latin1_markdown_keeps_its_umlauts(corpus):
    ex = text_engine.extract(corpus / "md" / "umlauts-non-utf8.md", "md", CFG)
    assert [(b.kind, b.text, b.level) for b in ex.blocks] == [
        (ElementKind.title, "können", 2),
        (ElementKind.text, "können", None),
        (ElementKind.text, "äöüß", None),
    ]


def test_cp1252_wins_a_tie_with_cp1250(bad_inputs):
    # Regression: charset-normalizer ranks cp1250 first on short Western text, turning 'naïve' into 'naďve'.
    assert "naïve café, “quotes” and 5 €" in _text(text_engine.extract(bad_inputs / "cp1252.txt", "txt", CFG))


def test_invalid_utf8_keeps_the_good_text(bad_inputs):
    text = _text(text_engine.extract(bad_inputs / "invalid_utf8.txt", "txt", CFG))
    assert "Grüße aus Köln: naïve café" in text
    assert "broken ÿþÃ bytes here" in text  # stray bytes read as cp1252, not dropped


def test_utf16_xml_with_bom(corpus):
    text = _text(text_engine.extract(corpus / "xml" / "factbook-utf-16.xml", "xml", CFG))
    assert "<name>United States</name>" in text and "\x00" not in text


def test_csv_keeps_columns_under_blank_header_cells(corpus):
    for name in ("stanley-cups.csv", "stanley-cups-utf-16.csv"):
        [table] = text_engine.extract(corpus / "csv" / name, "csv", CFG).blocks
        assert table.kind == ElementKind.table
        assert table.text.splitlines() == [
            "Stanley Cups",
            "Team | Location | Stanley Cups",
            "Blues | STL | 1",
            "Flyers | PHI | 2",
            "Maple Leafs | TOR | 13",
        ]


def test_csv_delimiter_is_sniffed(corpus):
    [table] = text_engine.extract(corpus / "csv" / "semicolon-delimited.csv", "csv", CFG).blocks
    assert table.text.splitlines()[0] == "Lorem, ipsum | dolor sit | amet"


def test_csv_with_long_lines_keeps_every_column(corpus):
    [table] = text_engine.extract(corpus / "csv" / "csv-with-long-lines.csv", "csv", CFG).blocks
    rows = [line.split(" | ") for line in table.text.splitlines()]
    assert len(rows) == 11 and len(rows[0]) > 300
    assert all(len(row) == len(rows[0]) for row in rows)


def test_tsv_with_emoji(corpus):
    [table] = text_engine.extract(corpus / "tsv" / "stanley-cups-with-emoji.tsv", "tsv", CFG).blocks
    assert table.text.splitlines()[-1].endswith("| TOR | 15")


def test_long_csv_is_cut_into_tables_that_repeat_the_header(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("id,name\n" + "".join(f"{i},row {i}\n" for i in range(120)), encoding="utf-8")
    tables = text_engine.extract(path, "csv", CFG).blocks
    assert [len(t.text.splitlines()) for t in tables] == [51, 51, 21]
    assert all(t.text.startswith("id | name\n") for t in tables)
    assert tables[-1].text.endswith("119 | row 119")


def test_json_is_split_between_entries(corpus):
    ex = text_engine.extract(corpus / "json" / "spring-weather.html.json", "json", CFG)
    assert len(ex.blocks) > 5 and {b.kind for b in ex.blocks} == {ElementKind.code}
    assert all(len(b.text) < text_engine.DATA_HARD + 2000 for b in ex.blocks)
    assert all(b.text.lstrip().startswith(("{", "[")) for b in ex.blocks)  # each block opens an entry
    assert '"text": "News Around NOAA"' in _text(ex)


def test_single_line_json_is_pretty_printed(tmp_path):
    path = tmp_path / "blob.json"
    path.write_text('{"a": [1, 2], "b": {"c": "d\\u00e9"}}', encoding="utf-8")
    assert text_engine.extract(path, "json", CFG).blocks[0].text.splitlines()[:3] == ["{", '  "a": [', "    1,"]


def test_yaml_and_ndjson_keep_raw_text(corpus):
    assert 'location: "a pear tree"' in _text(text_engine.extract(corpus / "yaml" / "simple.yaml", "yaml", CFG))
    ndjson = text_engine.extract(corpus / "ndjson" / "simple.ndjson", "ndjson", CFG)
    assert '"text": "These are a few of my favorite things:"' in _text(ndjson)


@pytest.mark.parametrize(
    "name, fmt, levels",
    [
        ("md/README.md", "md", [("Example Docs", 2), ("XBRL 10-K", 4)]),
        ("rst/README.rst", "rst", [("Example Docs", 1), ("XBRL 10-K", 2)]),
        ("org/README.org", "org", [("Example Docs", 1), ("XBRL 10-K", 2)]),
    ],
)
def test_markup_headings_become_titles(corpus, name, fmt, levels):
    ex = text_engine.extract(corpus / name, fmt, CFG)
    assert [(b.text, b.level) for b in _of_kind(ex, ElementKind.title)] == levels
    assert len(_of_kind(ex, ElementKind.list_item)) == 3
    _, elements = assemble(ex.blocks)
    last = elements[-1]
    assert last.text == "You can parse this document using the HTML parser."
    assert last.section == ["Example Docs", "XBRL 10-K"]


def test_markdown_code_and_tables(corpus):
    code = _of_kind(text_engine.extract(corpus / "md" / "codeblock.md", "md", CFG), ElementKind.code)
    assert len(code) == 3 and code[0].text.startswith("<!DOCTYPE html>")
    [table] = text_engine.extract(corpus / "md" / "simple-table.md", "md", CFG).blocks
    assert table.text.splitlines() == ["Item | Price | # In stock", "Juicy Apples | 1.99 | 739", "Bananas | 1.89 | 6"]


def test_50mb_text_streams_in_seconds(tmp_path):
    path = big_text(tmp_path / "big_50MB.txt")
    started = time.monotonic()
    ex = text_engine.extract(path, "txt", CFG)
    assert time.monotonic() - started < 10  # 0.6 s measured; the bound only catches a per-character loop
    assert len(ex.blocks) > 50_000 and ex.blocks[0].text.startswith("The quick brown fox")


# --- calamine engine ----------------------------------------------------------------------------


def test_xlsx_gives_a_page_per_sheet(corpus):
    ex = calamine_engine.extract(corpus / "xlsx" / "stanley-cups.xlsx", "xlsx", CFG)
    assert ex.pages == 2
    titles = _of_kind(ex, ElementKind.title)
    assert [(t.text, t.page, t.level) for t in titles] == [("Stanley Cups", 1, 1), ("Stanley Cups Since 67", 2, 1)]
    tables = _of_kind(ex, ElementKind.table)
    assert [(t.page, t.section) for t in tables] == [(1, ["Stanley Cups"]), (2, ["Stanley Cups Since 67"])]
    assert "Maple Leafs | TOR | 13" in tables[0].text.splitlines()  # 13, not 13.0
    _, elements = assemble(ex.blocks)
    assert elements[1].section == ["Stanley Cups"]  # not ["Stanley Cups", "Stanley Cups"]


@pytest.mark.parametrize(
    "name, fmt, pages, snippet",
    [
        ("xls/tests-example.xls", "xls", 3, "MC | What is 2+2? | 4 | correct | 3 | incorrect"),
        ("xlsm/testEXCEL_macro.xlsm", "xlsm", 3, "However, a macro is about to be created"),
        ("ods/test-columnar.ods", "ods", 1, "1 | 1 | This is row 1 of 10 | 0.1"),
        ("xlsx/2023-half-year-analyses-by-segment.xlsx", "xlsx", 5, "as per Note 3.1 | 7904 | 7683"),
    ],
)
def test_spreadsheets_read(corpus, name, fmt, pages, snippet):
    ex = calamine_engine.extract(corpus / name, fmt, CFG)
    assert ex.pages == pages and snippet in _text(ex)


def test_ods_dates_are_iso(corpus):
    assert "| 1960-01-01 |" in _text(calamine_engine.extract(corpus / "ods" / "test-columnar.ods", "ods", CFG))


def test_xlsb_panic_is_a_one_line_reason(corpus):
    # calamine 0.37 panics (a BaseException) on this Excel 2007 beta file; it must come back as a reason.
    try:
        ex = calamine_engine.extract(corpus / "xlsb" / "testEXCEL.xlsb", "xlsb", CFG)
    except ExtractionError as exc:
        assert str(exc).startswith("unreadable xlsb workbook") and "\n" not in str(exc)
    else:
        assert "This is an example spreadsheet" in _text(ex)


def test_password_protected_xlsx(bad_inputs):
    with pytest.raises(ExtractionError, match=r"^encrypted workbook \(password-protected\)"):
        calamine_engine.extract(bad_inputs / "password_protected.xlsx", "xlsx", CFG)


def test_cells_are_formatted_and_long_sheets_cut(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    import datetime as dt

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Data"
    sheet.append(["n", "float", "date", "flag", None, "after blank"])
    for i in range(120):
        sheet.append([i, 0.1 + 0.2, dt.datetime(2024, 5, 1), True, None, "x"])
    book.save(tmp_path / "long.xlsx")
    _, elements = assemble(calamine_engine.extract(tmp_path / "long.xlsx", "xlsx", CFG).blocks)
    tables = [e.text.splitlines() for e in elements if e.kind == ElementKind.table]
    assert [len(rows) for rows in tables] == [51, 51, 21]
    assert {rows[0] for rows in tables} == {"n | float | date | flag | | after blank"}  # blank header kept
    assert tables[0][1] == "0 | 0.3 | 2024-05-01 | TRUE | | x"


# --- tesseract engine ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, fmt, snippet",
    [
        ("png/DA-1p.png", "png", "Abomination"),
        ("heic/DA-1p.heic", "heic", "Abomination"),
        ("bmp/DA-1p-from-png.bmp", "bmp", "Abomination"),
        # 612x792 at 72 dpi: without the 2x upscale most of this page's words are lost.
        ("jpg/layout-parser-paper-fast.jpg", "jpg", "A Unified Toolkit for Deep"),
    ],
)
def test_ocr_reads_images(corpus, name, fmt, snippet):
    ex = tesseract_engine.extract(corpus / name, fmt, CFG)
    assert ex.pages == 1 and snippet in _text(ex)
    assert {b.kind for b in ex.blocks} == {ElementKind.image_text} and {b.page for b in ex.blocks} == {1}


def test_photo_without_text_gives_no_blocks(corpus):
    ex = tesseract_engine.extract(corpus / "jpg" / "example.jpg", "jpg", CFG)
    assert ex.pages == 1 and ex.char_count() < CFG.min_chars


def _multipage_tiff(corpus: Path, path: Path, crop: tuple[int, int, int, int] | None = None) -> Path:
    from PIL import Image

    names = ("jpg/layout-parser-paper-fast.jpg", "png/DA-1p.png")
    frames = [Image.open(corpus / name).convert("RGB") for name in names]
    frames = [f.crop(crop) for f in frames] if crop else frames
    frames[0].save(path, save_all=True, append_images=frames[1:], compression="tiff_deflate")
    return path


def test_multipage_tiff_gives_a_page_per_frame(corpus, tmp_path):
    tiff = _multipage_tiff(corpus, tmp_path / "two.tiff", crop=(0, 0, 595, 260))
    ex = tesseract_engine.extract(tiff, "tiff", CFG)
    assert ex.pages == 2 and {b.page for b in ex.blocks} == {1, 2}
    assert any("CREATURES" in b.text for b in ex.blocks if b.page == 2)


@pytest.mark.slow
def test_large_multipage_tiff(corpus, tmp_path):
    tiff = corpus / "_large" / "layout-parser-paper-combined.tiff"
    tiff = tiff if tiff.exists() else _multipage_tiff(corpus, tmp_path / "combined.tiff")
    ex = tesseract_engine.extract(tiff, "tiff", CFG)
    assert ex.pages > 1 and len({b.page for b in ex.blocks}) == ex.pages


def test_ocr_disabled():
    with pytest.raises(ExtractionError, match=r"^OCR is disabled \(ingest.ocr: false\)$"):
        tesseract_engine.extract(Path("any.png"), "png", IngestConfig(ocr=False))


def test_missing_tesseract_or_language_names_the_package(corpus, monkeypatch):
    image = corpus / "png" / "DA-1p.png"
    with pytest.raises(ExtractionError, match="tesseract-ocr-xyz"):
        tesseract_engine.extract(image, "png", IngestConfig(ocr_languages="eng+xyz"))
    monkeypatch.setattr(tesseract_engine.shutil, "which", lambda name: None)
    tesseract_engine._tesseract.cache_clear()
    try:
        with pytest.raises(ExtractionError, match="apt-get install tesseract-ocr"):
            tesseract_engine.extract(image, "png", CFG)
    finally:
        tesseract_engine._tesseract.cache_clear()


@pytest.mark.parametrize("side", [10_000, 14_000])  # Pillow warns past 89 MP and raises past 179 MP
def test_decompression_bomb_is_refused(tmp_path, side):
    from PIL import Image

    path = tmp_path / "bomb.png"
    Image.new("1", (side, side), 1).save(path)  # ~50 KB on disk
    with pytest.raises(ExtractionError, match=r"^refused: .*(decompression|bomb)"):
        tesseract_engine.extract(path, "png", CFG)


# --- zip engine ---------------------------------------------------------------------------------


def test_zip_members_keep_their_name_as_section(corpus):
    ex = zip_engine.extract(corpus / "zip" / "simple.zip", "zip", CFG)
    assert {b.section[0] for b in ex.blocks} <= {"ideas-page.html", "stanley-cups.csv"}
    [table] = [b for b in ex.blocks if b.section == ["stanley-cups.csv"]]
    assert "Maple Leafs | TOR | 13" in table.text
    _, elements = assemble(ex.blocks)
    assert all(e.section[0] in ("ideas-page.html", "stanley-cups.csv") for e in elements)


def test_zip_member_titles_and_pages_survive(tmp_path, corpus):
    xlsx = (corpus / "xlsx" / "stanley-cups.xlsx").read_bytes()
    path = _zip(tmp_path / "a.zip", [("docs/readme.md", "# Head\n\n" + PARAGRAPHS), ("sheets.xlsx", xlsx)])
    _, elements = assemble(zip_engine.extract(path, "zip", CFG).blocks)
    md = [(e.kind, e.section) for e in elements if e.section[0] == "docs/readme.md"]
    assert md[:2] == [(ElementKind.title, ["docs/readme.md"]), (ElementKind.text, ["docs/readme.md", "Head"])]
    sheet2 = [e for e in elements if e.section == ["sheets.xlsx", "Stanley Cups Since 67"]]
    assert sheet2 and {e.page for e in sheet2} == {2}


def test_zip_slip_names_are_never_written(tmp_path):
    members = [
        ("../evil.txt", PARAGRAPHS),
        ("/abs.txt", PARAGRAPHS),
        ("ok/good.txt", PARAGRAPHS),
        (".hidden.txt", PARAGRAPHS),
        ("__MACOSX/._good.txt", "x"),
        ("tool.exe", b"MZ" + bytes(64)),
    ]
    (tmp_path / "inner").mkdir()
    path = _zip(tmp_path / "inner" / "slip.zip", members)
    ex = zip_engine.extract(path, "zip", CFG)
    assert {b.section[0] for b in ex.blocks} == {"ok/good.txt"}
    assert ex.warnings == [f"{name}: unsafe path (absolute or '..'), not read" for name in ("../evil.txt", "/abs.txt")]
    assert not (tmp_path / "evil.txt").exists() and not Path("/abs.txt").exists()


def test_zip_over_the_inflate_limit(tmp_path):
    path = _zip(tmp_path / "big.zip", [("small.txt", PARAGRAPHS), ("zeros.txt", b"a" * 3 * 2**20)])
    ex = zip_engine.extract(path, "zip", IngestConfig(max_unzipped_mb=2))
    assert {b.section[0] for b in ex.blocks} == {"small.txt"}
    assert ex.warnings == ["zeros.txt: not read, the archive inflates past max_unzipped_mb=2"]
    only_big = _zip(tmp_path / "only.zip", [("zeros.txt", b"a" * 3 * 2**20)])
    with pytest.raises(ExtractionError, match=r"^no member gave text: zeros.txt: not read"):
        zip_engine.extract(only_big, "zip", IngestConfig(max_unzipped_mb=2))


def test_zip_member_lying_about_its_size_is_cut(tmp_path):
    data = bytearray(_zip(tmp_path / "lie.zip", [("lie.txt", PARAGRAPHS * 200)]).read_bytes())
    central = data.rindex(b"PK\x01\x02")
    data[central + 24 : central + 28] = (100).to_bytes(4, "little")  # declared uncompressed size: 100 bytes
    (tmp_path / "lie.zip").write_bytes(bytes(data))
    with pytest.raises(ExtractionError, match="lie.txt: cannot inflate"):
        zip_engine.extract(tmp_path / "lie.zip", "zip", CFG)


def test_zip_member_limit_and_nesting(tmp_path):
    deepest = io.BytesIO()
    with zipfile.ZipFile(deepest, "w") as zf:
        zf.writestr("deep.txt", PARAGRAPHS)
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("level1.txt", PARAGRAPHS)
        zf.writestr("deeper.zip", deepest.getvalue())
    path = _zip(tmp_path / "outer.zip", [("top.txt", PARAGRAPHS), ("inner.zip", inner.getvalue())])
    ex = zip_engine.extract(path, "zip", CFG)
    assert {tuple(b.section) for b in ex.blocks} == {("top.txt",), ("inner.zip", "level1.txt")}
    assert len(ex.warnings) == 1 and "nested more than one level deep" in ex.warnings[0]
    many = _zip(tmp_path / "many.zip", [(f"f{i}.txt", PARAGRAPHS) for i in range(5)])
    ex = zip_engine.extract(many, "zip", IngestConfig(max_zip_members=3))
    assert len({b.section[0] for b in ex.blocks}) == 3
    assert ex.warnings == ["read the first 3 of 5 members (max_zip_members)"]
