"""Keeping image decoders' chatter off the terminal: their messages go to the debug log instead.

Decoding thousands of user photos makes Pillow raise Python warnings ("Possibly corrupt EXIF data", "Truncated
File Read", ``DecompressionBombWarning``, ...) and makes libtiff print its errors from C straight to the process's
stderr ("ZIPDecode: Decoding error at scanline 0, ..."): hundreds of lines through the index progress bar. The
reason a file failed is kept in the catalog (`vsearch status` lists it), so these messages belong in the debug log
(`vsearch -v`), tagged with the file being decoded.

- Python warnings: ``warnings.showwarning`` is wrapped. A warning raised from Pillow's or pillow-heif's code, or a
  ``DecompressionBombWarning``, is logged at DEBUG; every other warning goes to the previous handler unchanged. One
  process-wide hook serves every decode thread; ``warnings.catch_warnings`` would swap module state per call,
  which is not thread-safe before Python 3.14.
- libtiff: Pillow silences libtiff's warnings itself but leaves its error handler at libtiff's default, which
  writes to fd 2. That handler is process-wide, so it is replaced (through ctypes) by one that formats the message
  with libc's ``vsnprintf`` and logs it at DEBUG. Redirecting fd 2 while decoding would swallow every other
  thread's stderr too. Where Pillow's libtiff cannot be reached as a shared library (Windows wheels link it into
  Pillow itself, where a windowed app has no stderr anyway), nothing is changed.
"""

from __future__ import annotations

import ctypes
import glob
import logging
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import PIL
from PIL import Image

log = logging.getLogger(__name__)

# Files whose warnings are decoder messages: Pillow's package and, when installed, pillow-heif's.
_DECODER_PACKAGES = ("PIL", "pillow_heif")
_MESSAGE_BYTES = 1024

_state = threading.local()
_install_lock = threading.Lock()
_libtiff_done = False
# ctypes frees a callback's trampoline with its Python object, and libtiff would then call freed memory: keep it.
_libtiff_handler: Any = None


@contextmanager
def decoding(name: str) -> Iterator[None]:
    """Quiet decoder messages while the body runs, naming ``name`` in the debug log for those of this thread."""
    install()
    previous = getattr(_state, "name", None)
    _state.name = name
    try:
        yield
    finally:
        _state.name = previous


def install() -> None:
    """Route decoder warnings and libtiff's messages to the debug log. Idempotent and thread-safe; cheap to repeat,
    which matters because ``warnings.catch_warnings`` (pytest uses it around every test) puts back the handler it
    found, dropping ours."""
    global _libtiff_done
    if getattr(warnings.showwarning, "_vsearch_decoder_hook", False) and _libtiff_done:
        return
    with _install_lock:
        if not getattr(warnings.showwarning, "_vsearch_decoder_hook", False):
            warnings.showwarning = _wrap_showwarning(warnings.showwarning)
        if not _libtiff_done:
            _libtiff_done = True
            _route_libtiff_errors()


def _current_file() -> str:
    return getattr(_state, "name", None) or "an image"


# --- Python warnings ------------------------------------------------------------------------------------------------


def _decoder_roots() -> list[str]:
    roots = [os.path.dirname(os.path.abspath(PIL.__file__))]
    heif: ModuleType | None = sys.modules.get("pillow_heif")
    if heif is not None and getattr(heif, "__file__", None):
        roots.append(os.path.dirname(os.path.abspath(heif.__file__)))
    return roots


def is_decoder_warning(category: type[Warning], filename: str) -> bool:
    """True for a warning that a decoder raised while reading a user's file."""
    if issubclass(category, Image.DecompressionBombWarning):
        return True
    path = os.path.abspath(filename)
    return any(path.startswith(root + os.sep) for root in _decoder_roots())


def _wrap_showwarning(previous: Any) -> Any:
    def showwarning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                    file: Any = None, line: str | None = None) -> None:
        if is_decoder_warning(category, filename):
            log.debug("decoding %s: %s: %s", _current_file(), category.__name__, message)
            return
        previous(message, category, filename, lineno, file, line)

    showwarning._vsearch_decoder_hook = True  # type: ignore[attr-defined]
    return showwarning


# --- libtiff --------------------------------------------------------------------------------------------------------

# libtiff's TIFFErrorHandler: void (*)(const char* module, const char* fmt, va_list ap). A va_list reaches a
# function as a pointer on the ABIs Pillow ships for (x86-64 SysV: an array that decays; arm64: a pointer or a
# large struct passed by reference), so it is taken as void* and handed on to vsnprintf unchanged.
_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p)


def _route_libtiff_errors() -> None:
    global _libtiff_handler
    if sys.platform == "win32":
        return
    try:
        libc = ctypes.CDLL(None)
        vsnprintf = libc.vsnprintf
        vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
        vsnprintf.restype = ctypes.c_int
    except (OSError, AttributeError) as exc:
        log.debug("libc's vsnprintf is not reachable (%s); libtiff messages keep going to stderr", exc)
        return

    def on_message(module: bytes | None, fmt: bytes | None, args: int | None) -> None:
        # Called from C: an exception here would be printed to stderr, which is what this is meant to stop.
        try:
            buffer = ctypes.create_string_buffer(_MESSAGE_BYTES)
            vsnprintf(buffer, _MESSAGE_BYTES, fmt or b"", args)
            text = buffer.value.decode("utf-8", errors="replace")
            where = (module or b"libtiff").decode("utf-8", errors="replace")
            log.debug("decoding %s: libtiff: %s: %s", _current_file(), where, text)
        except Exception:  # noqa: BLE001 - see above
            pass

    handler = _HANDLER(on_message)
    routed = 0
    for path in _loaded_libtiffs():
        try:
            library = ctypes.CDLL(path, mode=getattr(os, "RTLD_NOLOAD", 0) | ctypes.RTLD_LOCAL)
            set_handler = library.TIFFSetErrorHandler
        except (OSError, AttributeError) as exc:
            log.debug("cannot reach libtiff at %s: %s", path, exc)
            continue
        set_handler.argtypes = [_HANDLER]
        set_handler.restype = ctypes.c_void_p
        set_handler(handler)
        routed += 1
    if routed:
        _libtiff_handler = handler
        log.debug("libtiff error messages go to the debug log (%d copy/copies of libtiff)", routed)


def _loaded_libtiffs() -> list[str]:
    """Paths of the libtiff shared libraries in this process once Pillow is loaded (its wheels bundle their own)."""
    from PIL import _imaging  # noqa: F401 - loads Pillow's C extension and, with it, its libtiff

    found: list[str] = []
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:  # Linux: exactly what is loaded
            for line in maps:
                path = line.split(maxsplit=5)[-1].strip() if len(line.split()) >= 6 else ""
                if "libtiff" in os.path.basename(path) and path not in found:
                    found.append(path)
        return found
    except OSError:
        pass
    # macOS: Pillow's wheels keep their libraries in PIL/.dylibs.
    pil_dir = Path(PIL.__file__).resolve().parent
    return sorted(glob.glob(str(pil_dir / ".dylibs" / "libtiff*.dylib")))
