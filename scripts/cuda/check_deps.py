"""Check that every carried wheel's requirements (for CPython 3.12 on Linux x86-64, no extras) are
either carried in .whl/ or in the device image's package list, with the versions known for the device.

    python scripts/cuda/check_deps.py .whl DEVICE_PKGS.txt
"""

import sys
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ENV = {
    "python_version": "3.12",
    "python_full_version": "3.12.3",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "extra": "",
}
# Versions read on the device (KINDS.md 'pip list' row); others there are present, version unknown.
DEVICE_VERSIONS = {
    "accelerate": "1.15.0",
    "huggingface-hub": "1.33.0",
    "numpy": "2.5.2",
    "safetensors": "0.8.0",
    "sentencepiece": "0.2.2",
    "tokenizers": "0.23.2",
    "torch": "2.11.0",
    "torchvision": "0.26.0",
    "transformers": "5.17.0",
    "triton": "3.6.0",
}


def main() -> int:
    whl_dir, device_list = Path(sys.argv[1]), Path(sys.argv[2])
    device = {canonicalize_name(line.strip()) for line in device_list.read_text().splitlines() if line.strip()}
    carried: dict[str, Version] = {}
    reqs: list[tuple[str, Requirement]] = []
    for wheel in sorted(whl_dir.glob("*.whl")):
        with zipfile.ZipFile(wheel) as z:
            meta = Parser().parsestr(z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode())
        name = canonicalize_name(meta["Name"])
        if name in carried:
            print(f"DUPLICATE {name}")
        carried[name] = Version(meta["Version"])
        for line in meta.get_all("Requires-Dist") or []:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate(ENV):
                continue
            reqs.append((name, req))
    problems = 0
    for owner, req in reqs:
        dep = canonicalize_name(req.name)
        if dep in carried:
            ok = req.specifier.contains(carried[dep], prereleases=True)
            where = f"carried {carried[dep]}"
        elif dep in device:
            known = DEVICE_VERSIONS.get(dep)
            ok = known is None or req.specifier.contains(Version(known), prereleases=True)
            where = f"device {known or '(version unknown)'}"
        else:
            ok, where = False, "MISSING"
        if not ok or where.endswith("(version unknown)") and str(req.specifier):
            flag = "FAIL" if not ok else "check"
            problems += not ok
            print(f"{flag:5} {owner} needs {req.name}{req.specifier}: {where}")
    for dep in sorted(carried):
        if dep in device:
            print(f"note  {dep} {carried[dep]} carried, shadows the device's {DEVICE_VERSIONS.get(dep, '(version unknown)')}")
    print(f"{len(carried)} wheels, {len(reqs)} requirements, {problems} unmet")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
