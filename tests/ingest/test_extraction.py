"""Assembling blocks into exact offsets, and telling OCR text from OCR noise."""

from __future__ import annotations

from docpipe.contracts import ElementKind
from docpipe.ingest.extraction import Block, assemble, ocr_noise


def test_offsets_are_exact_and_headings_nest():
    text, elements = assemble(
        [
            Block(ElementKind.title, "Guide", level=1),
            Block(ElementKind.title, "Install", level=2),
            Block(ElementKind.text, "Run  the  script."),
            Block(ElementKind.title, "Use", level=2),
            Block(ElementKind.code, '{\n    "key": 1\n}'),
            Block(ElementKind.text, "   "),
        ]
    )
    assert [e.section for e in elements] == [[], ["Guide"], ["Guide", "Install"], ["Guide"], ["Guide", "Use"]]
    assert all(text[e.start : e.end] == e.text for e in elements)
    assert elements[2].text == "Run the script."
    assert '    "key": 1' in elements[4].text, "code keeps its indentation"


def test_explicit_section_resets_the_heading_path():
    _, elements = assemble(
        [
            Block(ElementKind.title, "Intro", level=1, section=["a.md"]),
            Block(ElementKind.text, "first", section=["a.md"]),
            Block(ElementKind.text, "second", section=["b.csv"]),
        ]
    )
    assert [e.section for e in elements] == [["a.md"], ["a.md", "Intro"], ["b.csv"]]


def test_ocr_noise_from_a_photo_is_not_text():
    assert ocr_noise("_ - —— > oe a * pe ee ge r ole elif 97 ht he ‘ yy, . fy . my")
    assert ocr_noise("")


def test_short_real_text_and_tables_are_not_noise():
    assert not ocr_noise("Chapter 1 – Introduction")
    # Regression: a table's many "n=3" cells once made this look like noise.
    assert not ocr_noise(
        "Blind 34.5%, n=1 1199 sec, n=1\nLow Vision 98.3% n=2 1716 sec, n=3\n(97.7%, n=3) | (1934 sec, n=2)\n"
        "Dexterity 98.3%, n=4 1672.1 sec, n=4\nMobility 95.4%, n=3 1416 sec, n=3"
    )
    assert not ocr_noise("格式測試 中文測試")
    assert not ocr_noise("적립 제외 대상")
