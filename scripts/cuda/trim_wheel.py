"""Repack a wheel without some of its files (RECORD rewritten to match), under a build tag that says so.

    python trim_wheel.py SRC.whl DEST_DIR TAG PATTERN [PATTERN...]

PATTERN is an fnmatch pattern of archive paths to DROP. Used for the device check only:
  unsloth: drop studio/* (Unsloth Studio, the web UI: 89 MB unpacked, never imported by unsloth/)
  bitsandbytes: drop every libbitsandbytes_*.so but cpu and cuda130 (the device's torch is cu130)
"""

import base64
import csv
import fnmatch
import hashlib
import io
import sys
import zipfile
from pathlib import Path


def main() -> None:
    src, dest, tag, patterns = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4:]
    name, version, *rest = src.name[: -len(".whl")].split("-")
    out = dest / f"{name}-{version}-{tag}-{'-'.join(rest[-3:])}.whl"
    dropped = 0
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zout:
        record_name = next(n for n in zin.namelist() if n.endswith(".dist-info/RECORD"))
        kept: list[str] = []
        for info in zin.infolist():
            if info.filename == record_name:
                continue
            if any(fnmatch.fnmatch(info.filename, p) for p in patterns):
                dropped += 1
                continue
            data = zin.read(info)
            zout.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            kept.append((info.filename, f"sha256={digest}", str(len(data))))
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerows(kept)
        writer.writerow((record_name, "", ""))
        zout.writestr(record_name, buf.getvalue())
    print(f"{out.name}: dropped {dropped} files, {out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
