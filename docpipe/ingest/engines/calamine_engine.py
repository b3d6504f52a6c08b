"""Spreadsheets (xlsx, xlsm, xls, xlsb, ods) through python-calamine: each sheet is a page of table blocks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from docpipe.config import IngestConfig
from docpipe.contracts import ElementKind
from docpipe.ingest.extraction import Block, Extraction, ExtractionError, table_texts

if TYPE_CHECKING:
    from python_calamine import CalamineWorkbook

_ENCRYPTED = "encrypted workbook (password-protected): remove the password and re-run"


def extract(path: Path, fmt: str, cfg: IngestConfig) -> Extraction:
    from python_calamine import CalamineWorkbook, PasswordError

    try:
        workbook = CalamineWorkbook.from_path(str(path))
    except PasswordError:  # an encrypted xlsx is an OLE2 EncryptedPackage; calamine recognises it
        raise ExtractionError(_ENCRYPTED) from None
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # calamine's errors share no useful base; a Rust panic is a BaseException
        crashed = "the calamine parser crashed: " if type(exc).__name__ == "PanicException" else ""
        raise ExtractionError(f"unreadable {fmt} workbook: {crashed}{_first_line(exc)}") from None
    with workbook:
        return _sheets(workbook)


def _sheets(workbook: CalamineWorkbook) -> Extraction:
    """One page per sheet: a title with the sheet name, then its table blocks."""
    from python_calamine import SheetTypeEnum

    blocks: list[Block] = []
    warnings: list[str] = []
    for page, sheet in enumerate(workbook.sheets_metadata, start=1):
        if sheet.typ != SheetTypeEnum.WorkSheet:
            continue  # chart and dialog sheets hold no cells; pages still follow the tab order
        name = sheet.name
        try:
            rows = _rows(workbook.get_sheet_by_index(page - 1).iter_rows())
            tables = [Block(ElementKind.table, text, page=page, section=[name]) for text in table_texts(rows)]
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # one damaged sheet (even a parser panic) should not cost the others
            warnings.append(f"sheet {name!r} unreadable: {_first_line(exc)}")
            continue
        # The title sits above its tables (section []), so tables get section [sheet], not [sheet, sheet].
        blocks.append(Block(ElementKind.title, name, page=page, level=1, section=[]))
        blocks.extend(tables)
    return Extraction(blocks=blocks, pages=len(workbook.sheets_metadata), warnings=warnings)


def _rows(rows: Iterable[list]) -> Iterator[list[str]]:
    """Rows as text cells, trailing empty cells trimmed and empty rows skipped."""
    for row in rows:
        cells = [_cell(value) for value in row]
        while cells and not cells[-1]:
            cells.pop()
        if cells:
            yield cells


def _cell(value: object) -> str:
    """A cell as a person reads it: 3 not 3.0, dates in ISO form, TRUE/FALSE."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.15g}"  # drops binary noise such as 0.30000000000000004
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return " ".join(str(value).split())  # a cell may hold line breaks: keep one row per line


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__
