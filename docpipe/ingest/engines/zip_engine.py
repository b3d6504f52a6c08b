"""Zip archives: each member is sniffed and parsed by its own engines; its blocks keep the member name as section."""

from __future__ import annotations

import re
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from docpipe.config import IngestConfig, updated
from docpipe.contracts import ElementKind
from docpipe.ingest.extraction import Block, Extraction, ExtractionError

MAX_NESTING = 2  # an archive inside the archive is read; one inside that is not
_SAFE_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,10}")
_CHUNK = 1 << 20
_depth = 0  # zip extractions running in this process: nested archives reach here through run_engines


def extract(path: Path, fmt: str, cfg: IngestConfig) -> Extraction:
    global _depth
    if _depth >= MAX_NESTING:
        raise ExtractionError("zip nested more than one level deep: not read")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ExtractionError(f"damaged zip archive: {exc}") from None
    _depth += 1
    try:
        with archive, tempfile.TemporaryDirectory(prefix="docpipe-zip-") as tmp:
            return _read_members(archive, Path(tmp), cfg)
    finally:
        _depth -= 1


def _read_members(archive: zipfile.ZipFile, tmp: Path, cfg: IngestConfig) -> Extraction:
    members, problems = _members(archive, cfg)
    blocks: list[Block] = []
    skipped: list[str] = []  # not documents (unsupported types): no warning, but named if nothing reads
    budget = cfg.max_unzipped_mb * 2**20  # bytes the members may still inflate to, all together
    for index, info in enumerate(members):
        if info.file_size > budget:
            limit = f"max_unzipped_mb={cfg.max_unzipped_mb}"
            problems.append(f"{info.filename}: not read, the archive inflates past {limit}")
            break
        member_path = tmp / f"{index}" / f"member{_suffix(info.filename)}"  # never the member's own name: no zip slip
        member_path.parent.mkdir()
        try:
            budget -= _inflate(archive, info, member_path)
            blocks += _parse_member(member_path, info.filename, cfg, budget, problems)
        except ExtractionError as exc:
            (skipped if str(exc).startswith("unsupported") else problems).append(f"{info.filename}: {exc}")
        finally:
            member_path.unlink(missing_ok=True)  # keep the disk bounded by one member at a time
    if not blocks:
        reasons = "; ".join(problems + skipped)[:400] or "the archive holds no files"
        raise ExtractionError(f"no member gave text: {reasons}")
    return Extraction(blocks=blocks, warnings=problems)


def _members(archive: zipfile.ZipFile, cfg: IngestConfig) -> tuple[list[zipfile.ZipInfo], list[str]]:
    """Files worth reading, in archive order, and the problems met choosing them."""
    problems: list[str] = []
    members = []
    for info in archive.infolist():
        parts = PurePosixPath(info.filename.replace("\\", "/")).parts
        if info.is_dir() or not parts or parts[0] == "__MACOSX":
            continue
        if not cfg.include_hidden and any(p.startswith(".") and p not in (".", "..") for p in parts):
            continue
        if info.filename.startswith(("/", "\\")) or ".." in parts or re.match(r"[A-Za-z]:", info.filename):
            problems.append(f"{info.filename}: unsafe path (absolute or '..'), not read")
            continue
        members.append(info)
    if len(members) > cfg.max_zip_members:
        problems.append(f"read the first {cfg.max_zip_members} of {len(members)} members (max_zip_members)")
        members = members[: cfg.max_zip_members]
    return members, problems


def _suffix(name: str) -> str:
    suffix = PurePosixPath(name.replace("\\", "/")).suffix
    return suffix.lower() if _SAFE_SUFFIX.fullmatch(suffix) else ""


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path) -> int:
    """Write one member to `dest`, refusing to go past its declared size (headers can lie)."""
    if info.flag_bits & 0x1:  # the zip "encrypted" flag: zipfile would ask for a password
        raise ExtractionError("encrypted member (password-protected), not read")
    written = 0
    try:
        with archive.open(info) as src, dest.open("wb") as out:
            while chunk := src.read(_CHUNK):
                written += len(chunk)
                if written > info.file_size:
                    raise ExtractionError("inflates past its declared size (damaged or hostile archive)")
                out.write(chunk)
    except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError, ValueError) as exc:
        raise ExtractionError(f"cannot inflate: {exc}") from None
    return written


def _parse_member(path: Path, name: str, cfg: IngestConfig, budget: int, problems: list[str]) -> list[Block]:
    """Sniff and parse one member with its own engines, then rebuild its elements as blocks."""
    from docpipe.ingest.parse import check_guards, run_engines  # parse imports the engines: import late
    from docpipe.ingest.sniff import detect_format

    fmt = detect_format(path)  # raises ExtractionError: unsupported, empty or mislabelled
    # Containers inside (docx, nested zip) share what is left of the archive's inflate budget.
    inner_cfg = updated(cfg, max_unzipped_mb=max(1, budget // 2**20))
    check_guards(path, fmt, inner_cfg)
    result = run_engines(path, fmt, inner_cfg)
    if result["status"] == "failed" or result.get("reason"):
        problems.append(f"{name}: {result['reason']}")
    return [_block(element, name) for element in result.get("elements", [])]


def _block(element: dict, member: str) -> Block:
    section = element.get("section") or []
    kind = ElementKind(element["kind"])
    level = len(section) + 1 if kind == ElementKind.title else None  # a title nests under its section path
    return Block(kind=kind, text=element["text"], page=element.get("page"), level=level, section=[member, *section])
