"""Build the one-folder bundle for the OS this runs on: ``python installer/build.py`` -> dist/VSearch/.

Steps, each printed with its time:
1. A build venv of its own under .installer-cache/ (the developer's venv keeps its native, -march=native hnswlib
   and its transformers). It is made once and reused while its key is unchanged: a hash of pyproject.toml,
   installer/requirements-build.txt, the torch and hnswlib pins, the index options and the Python version. The spec
   is deliberately not in the key: it changes nothing that is installed, and the project itself is reinstalled into
   the venv on every build, so code edits always reach the bundle.
2. torch (CPU by default; ``--torch`` and ``--torch-index-url`` pick another build, e.g. CUDA on Windows), then
   hnswlib compiled portable (no -march=native: see PORTABLE_HNSWLIB_ENV) as a wheel kept in the cache and checked
   with objdump, then the project with its runtime dependencies, then PyInstaller. Packages come through pip's own
   configuration (pip.conf, PIP_* variables): nothing here names an index unless you pass one.
3. The icon files rendered from vsearch_app/resources/app.svg (installer/make_icons.py).
4. PyInstaller with installer/vsearch.spec and a persistent work folder (build/pyinstaller), so a rebuild is quicker.
5. Checks that warn loudly: hnswlib's library in the bundle has no AVX instructions; on Linux, every library Qt's
   xcb platform plugin needs is in the bundle (a library missing on the build machine cannot be bundled, and the
   app would then fail to open a window on desktops that lack it too).
6. The bundle's size and its 15 largest parts.

Options: ``--clean`` (fresh PyInstaller work folder), ``--new-venv`` (rebuild the build venv).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bundle_checks  # noqa: E402
from app_info import APP_NAME, DIST_DIR, REPO_ROOT  # noqa: E402

TORCH_DEFAULT = "torch==2.13.0"
TORCH_INDEX_ENV = "VSEARCH_TORCH_INDEX_URL"  # how CI (and the bundle test it runs) picks torch's index
HNSWLIB = "hnswlib==0.8.0"
# hnswlib's setup.py adds -march=native (and on macOS probes -mcpu=apple-m1) unless HNSWLIB_NO_NATIVE is set: a wheel
# built that way dies with SIGILL on a CPU older than the build machine's. -Wl,-S drops the debug symbols that
# Python's own -g puts in (8.5 MB -> 0.6 MB); CFLAGS cannot, Python's flags come after them.
PORTABLE_HNSWLIB_ENV = {"HNSWLIB_NO_NATIVE": "1"}
if sys.platform != "win32":
    PORTABLE_HNSWLIB_ENV["LDFLAGS"] = "-Wl,-S"

CACHE_DIR = REPO_ROOT / ".installer-cache"
WORK_DIR = REPO_ROOT / "build" / "pyinstaller"
SPEC = REPO_ROOT / "installer" / "vsearch.spec"
REQUIREMENTS = REPO_ROOT / "installer" / "requirements-build.txt"


EXIT_FAILED = 1
EXIT_PYINSTALLER_UNAVAILABLE = 3  # PyInstaller cannot run here at all (the bundle test skips on this, and only this)


class BuildError(Exception):
    """A step failed; the message says which and why (printed as one line, exit status 1)."""


class PyInstallerUnavailable(BuildError):
    """PyInstaller cannot be installed or cannot bundle this Python (exit status 3)."""


def check_python_is_bundleable() -> None:
    """PyInstaller embeds libpython: a Python built without a shared library (some distributions' and pyenv's
    defaults) cannot be bundled, whatever the project does."""
    if sys.platform == "linux" and not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        raise PyInstallerUnavailable(f"this Python ({sys.base_prefix}) has no shared libpython, which PyInstaller "
                                     "needs; use a Python built with --enable-shared")


def step(title: str) -> float:
    print(f"\n== {title}", flush=True)
    return time.monotonic()


def done(started: float) -> None:
    print(f"   ({time.monotonic() - started:.0f} s)", flush=True)


def run(command: list[str], *, env: dict[str, str] | None = None, cwd: Path = REPO_ROOT) -> None:
    print("   $ " + " ".join(command), flush=True)
    result = subprocess.run(command, cwd=cwd, env={**os.environ, **(env or {})})
    if result.returncode != 0:
        raise BuildError(f"this command failed with status {result.returncode}: {' '.join(command)}")


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def venv_key(torch_spec: str, torch_index: str | None) -> str:
    digest = hashlib.sha256()
    for path in (REPO_ROOT / "pyproject.toml", REQUIREMENTS):
        digest.update(path.read_bytes())
    for text in (torch_spec, torch_index or "", HNSWLIB, repr(sorted(PORTABLE_HNSWLIB_ENV.items())),
                 platform.python_version(), sys.platform, platform.machine()):
        digest.update(text.encode() + b"\0")
    return digest.hexdigest()[:16]


def pip(python: Path, *args: str, env: dict[str, str] | None = None) -> None:
    run([str(python), "-m", "pip", "--disable-pip-version-check", *args], env=env)


def is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")


def check_portable(library: Path) -> None:
    """Fail when ``library`` has AVX-family instructions; say so when it cannot be checked."""
    if not is_x86():
        print(f"   {library.name}: not an x86 machine, no AVX to look for")
        return
    count = bundle_checks.vex_instruction_count(library)
    if count is None:
        print(f"   WARNING: objdump is not installed: cannot check that {library.name} has no AVX instructions")
    elif count:
        raise BuildError(f"{library} has {count} AVX (VEX) instructions: it was compiled for this CPU, not portable")
    else:
        print(f"   {library.name}: 0 AVX instructions (portable)")


def portable_hnswlib_wheel(python: Path) -> Path:
    """The cached portable wheel, built when absent. --no-cache-dir: pip's wheel cache does not key on the
    environment, so it would hand back a native wheel of the same name built earlier."""
    wheels = CACHE_DIR / "wheels" / f"{HNSWLIB.replace('==', '-')}-py{platform.python_version()}-{platform.machine()}"
    found = sorted(wheels.glob("hnswlib-*.whl"))
    if found:
        return found[0]
    with tempfile.TemporaryDirectory(prefix="hnswlib-wheel-") as tmp:
        pip(python, "wheel", "--no-cache-dir", "--no-deps", HNSWLIB, "-w", tmp, env=PORTABLE_HNSWLIB_ENV)
        built = sorted(Path(tmp).glob("hnswlib-*.whl"))
        if not built:
            raise BuildError("pip wheel hnswlib produced no wheel")
        with zipfile.ZipFile(built[0]) as wheel, tempfile.TemporaryDirectory() as unpacked:
            for name in wheel.namelist():
                if name.startswith("hnswlib") and name.endswith((".so", ".pyd")):
                    check_portable(Path(wheel.extract(name, unpacked)))
        wheels.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy2(built[0], wheels / built[0].name))


def build_venv(torch_spec: str, torch_index: str | None, fresh: bool) -> Path:
    key = venv_key(torch_spec, torch_index)
    venv = CACHE_DIR / f"venv-{key}"
    marker = venv / ".vsearch-build-venv-complete"
    for old in CACHE_DIR.glob("venv-*"):  # one build venv at a time: each is ~1.5 GB
        if old != venv or fresh or not marker.exists():
            print(f"   removing {old.name}")
            shutil.rmtree(old, ignore_errors=True)
    python = venv_python(venv)
    if marker.exists():
        print(f"   reusing {venv.relative_to(REPO_ROOT)} (key {key})")
        return python
    run([sys.executable, "-m", "venv", str(venv)])
    pip(python, "install", "--upgrade", "pip")
    try:  # first: when PyInstaller cannot be had, nothing else is worth installing
        pip(python, "install", "-r", str(REQUIREMENTS))
    except BuildError as exc:
        raise PyInstallerUnavailable(f"PyInstaller cannot be installed ({exc})") from exc
    pip(python, "install", torch_spec, *(["--index-url", torch_index] if torch_index else []))
    wheel = portable_hnswlib_wheel(python)
    pip(python, "install", "--no-deps", "--force-reinstall", str(wheel))
    pip(python, "install", ".")  # the runtime dependencies; torch and hnswlib already satisfy their ranges
    marker.write_text(key + "\n")
    return python


def install_project(python: Path) -> None:
    # setuptools copies the sources through build/lib and never empties it: a module deleted from the checkout would
    # still be packaged from there. Start from a clean copy.
    for stale in [REPO_ROOT / "build" / "lib", *REPO_ROOT.glob("build/bdist.*")]:
        shutil.rmtree(stale, ignore_errors=True)
    pip(python, "install", "--no-deps", "--force-reinstall", "--no-cache-dir", ".")


def installed_hnswlib(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import hnswlib; print(hnswlib.__file__)"], capture_output=True,
                         text=True, check=True).stdout.strip()
    return Path(out)


def warn(lines: list[str]) -> None:
    bar = "!" * 100
    print(f"\n{bar}", file=sys.stderr)
    for line in lines:
        print(f"!! {line}", file=sys.stderr)
    print(bar, file=sys.stderr, flush=True)


def check_xcb(bundle: Path) -> None:
    """On Linux: every library the xcb platform plugin loads must travel in the bundle, or resolve to the base
    system. A library the build machine itself lacks cannot be bundled: say loudly which package to install."""
    report = bundle_checks.link_report(bundle_checks.xcb_plugin(bundle), bundle_checks.internal_dir(bundle))
    if report.missing:
        warn([f"The build machine lacks {', '.join(report.missing)}, which Qt's xcb platform plugin needs.",
              "The bundle cannot carry them: on a desktop without them the app cannot open its window.",
              f"Install them and build again: {bundle_checks.missing_package_hint(report.missing)}"])
    else:
        print(f"   xcb plugin: {len(report.inside)} libraries from the bundle, {len(report.outside)} from the system")


def strip_libpython(internal: Path) -> None:
    """pyenv's libpython keeps its debug sections (23 MB -> 6.5 MB stripped). Only this file: a global strip over
    auditwheel-patched libraries is a known way to break them."""
    strip = shutil.which("strip")
    if strip is None or sys.platform != "linux":
        return
    for library in internal.glob("libpython3*.so*"):
        before = library.stat().st_size
        subprocess.run([strip, "--strip-debug", str(library)], check=False)
        print(f"   {library.name}: {before / 1e6:.1f} MB -> {library.stat().st_size / 1e6:.1f} MB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", action="store_true", help="start from an empty PyInstaller work folder")
    parser.add_argument("--new-venv", action="store_true", help="recreate the cached build venv")
    parser.add_argument("--torch", default=TORCH_DEFAULT, metavar="SPEC",
                        help=f"torch requirement (default {TORCH_DEFAULT}; e.g. torch==2.13.0+cu128 for CUDA)")
    parser.add_argument("--torch-index-url", metavar="URL", default=os.environ.get(TORCH_INDEX_ENV) or None,
                        help=f"index for torch only (default: ${TORCH_INDEX_ENV}, else pip's configuration), e.g. "
                             "PyTorch's CPU index on Linux, where PyPI's torch is the CUDA build")
    args = parser.parse_args(argv)
    total = time.monotonic()
    try:
        check_python_is_bundleable()
        started = step("build venv")
        python = build_venv(args.torch, args.torch_index_url, args.new_venv)
        install_project(python)
        check_portable(installed_hnswlib(python))
        done(started)

        started = step("icons")
        run([str(python), str(REPO_ROOT / "installer" / "make_icons.py")], env={"QT_QPA_PLATFORM": "offscreen"})
        done(started)

        started = step("PyInstaller")
        if args.clean:
            shutil.rmtree(WORK_DIR, ignore_errors=True)
        dist = REPO_ROOT / DIST_DIR.parent
        run([str(python), "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN", "--distpath", str(dist),
             "--workpath", str(WORK_DIR), str(SPEC)])
        done(started)

        started = step("checks")
        bundle = REPO_ROOT / DIST_DIR
        if sys.platform == "darwin":
            bundle = dist / f"{APP_NAME}.app"
        internal = bundle_checks.internal_dir(bundle)
        strip_libpython(internal)
        check_portable(bundle_checks.find_one(internal, "hnswlib*.so" if sys.platform != "win32" else "hnswlib*.pyd"))
        if sys.platform == "linux":
            check_xcb(bundle)
        done(started)

        bundle_checks.print_size_report(bundle)
        print(f"\nbuilt {bundle} in {time.monotonic() - total:.0f} s", flush=True)
        return 0
    except PyInstallerUnavailable as exc:
        print(f"build.py: PyInstaller cannot run here: {exc}", file=sys.stderr)
        return EXIT_PYINSTALLER_UNAVAILABLE
    except (BuildError, FileNotFoundError, subprocess.CalledProcessError) as exc:
        print(f"build.py: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
