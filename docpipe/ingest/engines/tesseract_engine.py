"""OCR for images (png, jpg, tiff, bmp, gif, webp, heic) with the Tesseract CLI: every frame is a page."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from docpipe.config import IngestConfig
from docpipe.contracts import ElementKind
from docpipe.ingest.extraction import Block, Extraction, ExtractionError, ocr_noise

if TYPE_CHECKING:
    from PIL.Image import Image

# Word recall measured against the PDFs' text: a 72-dpi page image (layout-parser-paper-fast.jpg,
# 612x792) went from 45 % to 92 % at 2x (3x, 4x: no better), DA-1p.png (842 px) 98 -> 99 %; but a
# 1377-px table image fell from 56 % to 19 % at 2x. So only frames smaller than this are scaled up 2x.
UPSCALE_BELOW = 1000  # longer side, in pixels
TIME_SHARE = 0.9  # of cfg.timeout_s, so a slow file ends with its pages so far before the worker is killed
_INSTALL = "install Tesseract: apt-get install tesseract-ocr tesseract-ocr-eng (macOS: brew install tesseract)"
_BLANK_LINES = re.compile(r"\n\s*\n")


def extract(path: Path, fmt: str, cfg: IngestConfig) -> Extraction:
    if not cfg.ocr:
        raise ExtractionError("OCR is disabled (ingest.ocr: false)")
    binary = _tesseract(cfg.ocr_languages)
    deadline = time.monotonic() + cfg.timeout_s * TIME_SHARE
    blocks: list[Block] = []
    problems: list[str] = []
    with _open_image(path, fmt) as image:
        pages = getattr(image, "n_frames", 1)
        for page in range(1, pages + 1):
            try:
                text = _ocr(binary, _frame(image, page), cfg.ocr_languages, deadline - time.monotonic())
            except ExtractionError as exc:
                if page == 1:
                    raise
                problems.append(f"OCR stopped at page {page} of {pages}: {exc}")
                break
            if ocr_noise(text):
                continue  # a photo or drawing: what OCR "read" is specks, not text
            paragraphs = (p.strip() for p in _BLANK_LINES.split(text))
            blocks += [Block(ElementKind.image_text, p, page=page) for p in paragraphs if p]
    return Extraction(blocks=blocks, pages=pages, warnings=problems)


@functools.lru_cache(maxsize=8)
def _tesseract(languages: str) -> str:
    """The tesseract binary, once checked to have every language asked for."""
    binary = shutil.which("tesseract")
    if not binary:
        raise ExtractionError(f"tesseract not found on PATH: {_INSTALL}")
    listed = subprocess.run([binary, "--list-langs"], capture_output=True, text=True, timeout=60)
    installed = {line.strip() for line in listed.stdout.splitlines()[1:]}
    missing = [lang for lang in languages.split("+") if lang not in installed]
    if missing:
        packages = " ".join(f"tesseract-ocr-{lang}" for lang in missing)
        raise ExtractionError(f"Tesseract has no language data for {'+'.join(missing)} (ingest.ocr_languages): apt-get install {packages}")
    return binary


def _open_image(path: Path, fmt: str) -> Image:
    from PIL import Image, UnidentifiedImageError

    if fmt == "heic":
        from pi_heif import register_heif_opener

        register_heif_opener()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # _frame refuses those frames itself
            image = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise ExtractionError(f"refused: {exc}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ExtractionError(f"unreadable {fmt} image: {exc}") from None
    return image


def _frame(image: Image, page: int) -> Image:
    """Frame `page` as greyscale, alpha flattened onto white, small pages scaled up 2x."""
    from PIL import Image as PILImage
    from PIL import ImageOps

    try:
        image.seek(page - 1)
        width, height = image.size
        if PILImage.MAX_IMAGE_PIXELS and width * height > PILImage.MAX_IMAGE_PIXELS:
            # Pillow only warns below twice its limit, and checks the first frame alone.
            raise ExtractionError(
                f"refused: image of {width}x{height} pixels is over Pillow's decompression-bomb limit "
                f"({PILImage.MAX_IMAGE_PIXELS:,} pixels)"
            )
        frame = ImageOps.exif_transpose(image)  # phone photos are stored sideways
    except (OSError, EOFError, ValueError) as exc:
        raise ExtractionError(f"unreadable frame: {exc}") from None
    width, height = frame.size
    if frame.mode.startswith(("I", "F")):  # 16/32-bit greyscale: scale its range to 8 bits rather than clip it
        frame = frame.convert("I") if frame.mode.startswith("I;16") else frame
        low, high = frame.getextrema()
        frame = frame.point(lambda v: (v - low) * (255 / max(high - low, 1)))
    if frame.mode in ("RGBA", "LA", "PA", "P") or "transparency" in frame.info:
        rgba = frame.convert("RGBA")  # dark text on a transparent background would turn black on black
        frame = PILImage.alpha_composite(PILImage.new("RGBA", rgba.size, "white"), rgba)
    frame = frame.convert("L")
    if max(width, height) < UPSCALE_BELOW:
        frame = frame.resize((width * 2, height * 2), PILImage.LANCZOS)
    return frame


def _ocr(binary: str, frame: Image, languages: str, timeout: float) -> str:
    if timeout <= 0:
        raise ExtractionError("OCR ran out of time (ingest.timeout_s)")
    # One OCR thread per process: docpipe already runs one worker per core.
    env = {**os.environ, "OMP_THREAD_LIMIT": os.environ.get("OMP_THREAD_LIMIT", "1")}
    with tempfile.TemporaryDirectory(prefix="docpipe-ocr-") as tmp:
        png = Path(tmp) / "page.png"
        frame.save(png, compress_level=1)
        try:
            command = [binary, str(png), "stdout", "-l", languages]
            done = subprocess.run(command, capture_output=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            raise ExtractionError("OCR ran out of time (ingest.timeout_s)") from None
    if done.returncode != 0:
        errors = [line for line in done.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
        raise ExtractionError(f"tesseract failed: {errors[-1] if errors else f'exit status {done.returncode}'}")
    return done.stdout.decode("utf-8", "replace")
