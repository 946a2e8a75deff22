"""Describes the machine the figures come from: CPU, cores, memory, Python and the renderers."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import shutil
import sqlite3
import subprocess
from importlib import metadata
from pathlib import Path


def describe() -> list[tuple[str, str]]:
    """(label, value) pairs; nothing here names a file or folder of the machine."""
    rows = [
        ("CPU", _cpu_model()),
        ("cores", _cores()),
        ("memory", _memory()),
        ("system", _system()),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("SQLite", sqlite3.sqlite_version),
    ]
    rows += _weasyprint()
    rows.append(("Chromium", chromium_version() or "not installed"))
    return rows


def chromium() -> str | None:
    """The headless Chromium on PATH, if any."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium_version() -> str | None:
    executable = chromium()
    if executable is None:
        return None
    try:
        result = subprocess.run([executable, "--version"], capture_output=True, text=True,
                                timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "installed (version unknown)"
    return result.stdout.strip() or "installed (version unknown)"


def _cpu_model() -> str:
    model = platform.processor() or platform.machine()
    virtual = False
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            if key.strip() == "flags" and "hypervisor" in value.split():
                virtual = True
    return model + (" (virtual machine)" if virtual else "")


def _cores() -> str:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    total = os.cpu_count() or 0
    if usable is not None and usable != total:
        return f"{usable} usable of {total}"
    return str(total)


def _memory() -> str:
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "unknown"


def _system() -> str:
    release = Path("/etc/os-release")
    if release.is_file():
        for line in release.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return f"{line.split('=', 1)[1].strip(chr(34))}, {platform.machine()}"
    return f"{platform.system()} {platform.release()}, {platform.machine()}"


def _weasyprint() -> list[tuple[str, str]]:
    try:
        from weasyprint.text import ffi
    except Exception as exc:  # the benchmark still describes what it can
        return [("WeasyPrint", f"cannot import ({type(exc).__name__})")]
    pango = ffi.pango.pango_version()
    pango_version = f"{pango // 10000}.{pango // 100 % 100}.{pango % 100}"
    subset = ffi.harfbuzz_subset is not None and bool(ffi.harfbuzz.hb_version_atleast(4, 1, 0))
    return [
        ("WeasyPrint", f"{metadata.version('weasyprint')} (pydyf {metadata.version('pydyf')})"),
        ("Pango", pango_version),
        ("HarfBuzz", _harfbuzz_version()),
        ("font subsetting", "hb-subset (libharfbuzz-subset)" if subset
         else "fontTools fallback (install libharfbuzz-subset0: about 3.5 times faster)"),
    ]


def _harfbuzz_version() -> str:
    name = ctypes.util.find_library("harfbuzz")
    if name is None:
        return "unknown"
    try:
        library = ctypes.CDLL(name)
    except OSError:
        return "unknown"
    library.hb_version_string.restype = ctypes.c_char_p
    version: bytes = library.hb_version_string()
    return version.decode()
