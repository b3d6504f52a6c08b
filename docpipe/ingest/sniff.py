"""Detect a file's format from its bytes; the extension only picks among look-alikes.

A PDF renamed .docx is read as a PDF; random bytes named .docx fail with a reason instead
of reaching a parser that would guess.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from docpipe.ingest.extraction import ExtractionError

# Extension -> format, for every format docpipe reads.
EXTENSIONS = {
    "pdf": "pdf",
    "docx": "docx",
    "docm": "docm",
    "dotx": "dotx",
    "dotm": "docm",
    "doc": "doc",
    "dot": "doc",
    "pptx": "pptx",
    "pptm": "pptm",
    "potx": "pptx",
    "ppsx": "pptx",
    "ppt": "ppt",
    "pps": "ppt",
    "xlsx": "xlsx",
    "xlsm": "xlsm",
    "xltx": "xlsx",
    "xlsb": "xlsb",
    "xls": "xls",
    "odt": "odt",
    "ods": "ods",
    "odp": "odp",
    "pages": "pages",
    "rtf": "rtf",
    "epub": "epub",
    "html": "html",
    "htm": "htm",
    "xhtml": "html",
    "xml": "xml",
    "md": "md",
    "markdown": "md",
    "rst": "rst",
    "org": "org",
    "txt": "txt",
    "text": "txt",
    "log": "txt",
    "csv": "csv",
    "tsv": "tsv",
    "json": "json",
    "ndjson": "ndjson",
    "jsonl": "ndjson",
    "yaml": "yaml",
    "yml": "yaml",
    "eml": "eml",
    "msg": "msg",
    "png": "png",
    "jpg": "jpg",
    "jpeg": "jpg",
    "tif": "tiff",
    "tiff": "tiff",
    "bmp": "bmp",
    "heic": "heic",
    "heif": "heic",
    "gif": "gif",
    "webp": "webp",
    "zip": "zip",
}

# Container family -> formats that share it, the first being what an unlabelled file is read as.
_ZIP_FAMILIES = {
    "word/": ("docx", "docm", "dotx"),
    "xl/": ("xlsx", "xlsm", "xlsb"),
    "ppt/": ("pptx", "pptm"),
}
_ODF_MIMETYPES = {
    "application/vnd.oasis.opendocument.text": "odt",
    "application/vnd.oasis.opendocument.spreadsheet": "ods",
    "application/vnd.oasis.opendocument.presentation": "odp",
    "application/epub+zip": "epub",
}
_OLE_STREAMS = (("WordDocument", "doc"), ("Workbook", "xls"), ("Book", "xls"), ("PowerPoint Document", "ppt"))
_TEXT_FORMATS = {"txt", "md", "rst", "org", "csv", "tsv", "json", "ndjson", "yaml", "xml", "html", "htm", "eml"}
_IMAGE_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpg"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
)
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"}


def extension_format(path: Path | str) -> str:
    """The file's extension as a format name, for files reported before (or instead of) sniffing."""
    return Path(path).suffix.lower().lstrip(".") or "unknown"


def detect_format(path: Path) -> str:
    """Return the format of `path`, or raise ExtractionError saying why it cannot be read."""
    ext = path.suffix.lower().lstrip(".")
    claimed = EXTENSIONS.get(ext)
    with path.open("rb") as fh:
        head = fh.read(8192)
    if not head:
        raise ExtractionError("empty file (0 bytes)")
    found = _from_signature(path, head, claimed)
    if found is None:
        if claimed is None:
            raise ExtractionError(f"unsupported file type '.{ext}'" if ext else "unsupported file type (no extension)")
        if claimed in _TEXT_FORMATS:
            raise ExtractionError(f"not a {claimed} file: the content is binary data")
        raise ExtractionError(f"not a valid {claimed} file: the content matches no known document format (corrupt or mislabelled)")
    return found


def _from_signature(path: Path, head: bytes, claimed: str | None) -> str | None:
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return _ole_format(path, claimed)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return _zip_format(path, claimed)
    if head.startswith(b"{\\rtf"):
        return "rtf"
    for signature, fmt in _IMAGE_SIGNATURES:
        if head.startswith(signature):
            return fmt
    if head.startswith(b"BM") and len(head) > 26:
        return "bmp"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "heic"
    if _looks_like_text(head):
        return claimed if claimed in _TEXT_FORMATS else _text_format(head)
    return None


def _ole_format(path: Path, claimed: str | None) -> str:
    import olefile

    try:
        with olefile.OleFileIO(str(path)) as ole:
            streams = {"/".join(entry) for entry in ole.listdir(streams=True, storages=True)}
    except Exception as exc:  # olefile raises plain OSError/struct errors on damaged files
        raise ExtractionError(f"damaged Office file: {exc}") from None
    if "EncryptedPackage" in streams or "EncryptionInfo" in streams:
        raise ExtractionError("encrypted Office file (password-protected): remove the password and re-run")
    if any(s.startswith("__substg1.0_") for s in streams):
        return "msg"
    for stream, fmt in _OLE_STREAMS:
        if stream in streams:
            return fmt
    raise ExtractionError(f"unrecognised OLE2 compound file (claimed {claimed or 'unknown'})")


def _zip_format(path: Path, claimed: str | None) -> str:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            mimetype = zf.read("mimetype")[:100].decode("ascii", "replace").strip() if "mimetype" in names else ""
    except (zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise ExtractionError(f"damaged zip container: {exc}") from None
    if mimetype in _ODF_MIMETYPES:
        return _ODF_MIMETYPES[mimetype]
    if "[Content_Types].xml" in names:
        for prefix, family in _ZIP_FAMILIES.items():
            if any(n.startswith(prefix) for n in names):
                return claimed if claimed in family else family[0]
    if "index.xml" in names or any(n.startswith("Index/") for n in names):
        return "pages"
    return "zip"


def _looks_like_text(head: bytes) -> bool:
    if head.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return True
    nul = head.count(b"\x00")
    if nul == 0:
        controls = sum(1 for b in head if b < 9 or 13 < b < 32)
        return controls <= len(head) // 100
    return utf16_without_bom(head) is not None


def utf16_without_bom(head: bytes) -> str | None:
    """'utf-16-be' or 'utf-16-le' when `head` looks like UTF-16 text without a byte-order mark."""
    # Mostly-ASCII UTF-16 has a NUL in every other byte: the high byte comes first in big-endian.
    half = len(head) // 2
    if half < 4:
        return None
    even, odd = head[0::2].count(0), head[1::2].count(0)
    if even >= half * 0.3 and odd <= half * 0.05:
        return "utf-16-be"
    if odd >= half * 0.3 and even <= half * 0.05:
        return "utf-16-le"
    return None


def _text_format(head: bytes) -> str:
    sample = head.replace(b"\x00", b"").lstrip(b"\xef\xbb\xbf\xff\xfe \t\r\n").lower()
    if sample.startswith((b"<!doctype html", b"<html")):
        return "html"
    if sample.startswith(b"<?xml"):
        return "html" if b"<html" in sample else "xml"
    if sample.startswith((b"{", b"[")):
        return "json"
    if any(sample.startswith(h) for h in (b"from:", b"received:", b"return-path:", b"mime-version:", b"message-id:")):
        return "eml"
    return "txt"
