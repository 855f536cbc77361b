"""Checks on a built bundle, shared by build.py (which warns) and tests/installer/test_bundle.py (which asserts).

Stdlib only, and no import of the app: build.py runs under whatever Python started it, the tests in the dev venv.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

# An x86 VEX-encoded instruction (AVX/AVX2/FMA/AVX-512: vmovups, vfmadd231ps, ...) in objdump's output: a tab, then a
# mnemonic starting with "v". SSE mnemonics never start with "v", so a portable build prints none.
_VEX_MNEMONIC = re.compile(r"\tv[a-z0-9]+\s")
_LDD_LINE = re.compile(r"^\s*(\S+)\s+=>\s+(not found|\S+)")

# The Debian/Ubuntu packages that hold what Qt's xcb platform plugin loads beyond the base X libraries; build.py
# names them when one is missing on the build machine (the bundle can only carry what the machine has).
XCB_PACKAGES = {
    "libxcb-icccm.so.4": "libxcb-icccm4", "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-cursor.so.0": "libxcb-cursor0", "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0", "libxcb-util.so.1": "libxcb-util1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0", "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-randr.so.0": "libxcb-randr0", "libxcb-shape.so.0": "libxcb-shape0", "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0", "libxcb-shm.so.0": "libxcb-shm0", "libxcb-render.so.0": "libxcb-render0",
    "libxkbcommon.so.0": "libxkbcommon0", "libX11-xcb.so.1": "libx11-xcb1",
}


def internal_dir(bundle: Path) -> Path:
    """The folder PyInstaller puts everything but the executables in (``Contents/Frameworks`` in a .app)."""
    for candidate in (bundle / "_internal", bundle / "Contents" / "Frameworks"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"{bundle}: no _internal folder; is this a PyInstaller one-folder bundle?")


def find_one(root: Path, pattern: str) -> Path:
    matches = sorted(root.rglob(pattern))
    if not matches:
        raise FileNotFoundError(f"no {pattern} under {root}")
    return matches[0]


def vex_instruction_count(library: Path) -> int | None:
    """How many AVX-family (VEX-encoded) instructions ``library`` contains; None when objdump is not installed."""
    objdump = shutil.which("objdump")
    if objdump is None:
        return None
    result = subprocess.run([objdump, "-d", str(library)], capture_output=True, text=True, check=True)
    return sum(1 for line in result.stdout.splitlines() if _VEX_MNEMONIC.search(line))


@dataclass
class LinkReport:
    """Where each shared library a binary needs was found, as the bundle's loader would find it."""
    inside: dict[str, str] = field(default_factory=dict)    # name -> path inside the bundle
    outside: dict[str, str] = field(default_factory=dict)   # name -> path on this machine, outside the bundle
    missing: list[str] = field(default_factory=list)        # found nowhere


def link_report(binary: Path, bundle_internal: Path) -> LinkReport:
    """``ldd`` on ``binary`` with the bundle's library folders first on the search path, as the bootloader sets it."""
    ldd = shutil.which("ldd")
    if ldd is None:
        raise FileNotFoundError("ldd is not installed")
    library_dirs = [str(bundle_internal), *sorted({str(p.parent) for p in bundle_internal.rglob("*.so*")})]
    env = {**os.environ, "LD_LIBRARY_PATH": os.pathsep.join(library_dirs)}
    result = subprocess.run([ldd, str(binary)], capture_output=True, text=True, env=env, check=False)
    report = LinkReport()
    root = str(bundle_internal.resolve())
    for line in result.stdout.splitlines():
        match = _LDD_LINE.match(line)
        if not match:
            continue
        name, where = match.groups()
        if where == "not found":
            if name not in report.missing:
                report.missing.append(name)
        elif str(Path(where).resolve()).startswith(root):
            report.inside[name] = where
        else:
            report.outside[name] = where
    return report


def xcb_plugin(bundle: Path) -> Path:
    return find_one(internal_dir(bundle), "libqxcb.so")


def missing_package_hint(names: list[str]) -> str:
    packages = sorted({XCB_PACKAGES.get(name, name) for name in names})
    return "apt-get install " + " ".join(packages)


def tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def largest_parts(root: Path, count: int = 15) -> list[tuple[int, Path]]:
    """The ``count`` largest files under ``root``, biggest first, as (bytes, path relative to root)."""
    sizes = [(p.stat().st_size, p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not p.is_symlink()]
    return sorted(sizes, key=lambda item: item[0], reverse=True)[:count]


def print_size_report(root: Path, out=sys.stdout) -> int:
    total = tree_size(root)
    files = sum(1 for p in root.rglob("*") if p.is_file())
    print(f"bundle {root}: {total / 1e6:,.0f} MB in {files:,} files; the 15 largest parts:", file=out)
    for size, path in largest_parts(root):
        print(f"  {size / 1e6:8.1f} MB  {path.as_posix()}", file=out)
    return total
