"""Whether implicit's CUDA ALS can run in this process, and exactly why not when it cannot.

implicit's CUDA extension (implicit/gpu/_cuda.so) needs libcudart.so.13, libcublas.so.13, libcublasLt.so.13,
libcurand.so.10 (the nvidia-* CUDA 13 wheels), librmm.so and librapids_logger.so (librmm-cu13, rapids-logger).
Nothing puts the wheels' library folders on the loader's search path, so `preload_cuda_libraries` finds each
library among its wheel's installed files and loads it with RTLD_GLOBAL, dependencies first, before
`implicit.gpu` is imported: no LD_LIBRARY_PATH needed. `gpu_status` then imports (or re-imports) `implicit.gpu`,
captures the message it disables itself with, and turns it into one reason:

    the gpu extra is not installed
    library libcublas.so.13 is missing (nvidia-cublas is not installed)
    ABI mismatch: undefined symbol _ZTIN3rmm9bad_allocE (rmm-cu13 version 26.10.0; needs 26.2-26.4)
    no NVIDIA driver (CUDA driver version is insufficient for CUDA runtime version)
    NVIDIA driver 550.54 is too old (supports CUDA 12.4; CUDA 13 needs driver >= 580)
    no CUDA device (no CUDA-capable device is detected)
    available: 1 device(s)
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import importlib.metadata as md
import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

# (distribution, library file) in load order: each library after the ones it links against
LIBRARIES = (
    ("nvidia-cuda-runtime", "libcudart.so.13"),
    ("nvidia-cublas", "libcublasLt.so.13"),
    ("nvidia-cublas", "libcublas.so.13"),
    ("nvidia-curand", "libcurand.so.10"),
    ("rapids-logger", "librapids_logger.so"),
    ("librmm-cu13", "librmm.so"),
)
# rmm-cu13 releases whose C++ ABI matches the one implicit 0.7.3's extension was built against (25.10, 25.12 and
# 26.6 onwards fail to load it with undefined rmm symbols)
RMM_WORKS = "26.2-26.4"
CUDA_DRIVER_MIN = 580  # CUDA 13.x on Linux


@dataclass(frozen=True)
class GpuStatus:
    available: bool
    reason: str
    detail: dict = field(default_factory=dict, compare=False)


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def find_library(dist: str, name: str) -> Path | None:
    """The installed file `name` of distribution `dist` (from its RECORD), or None."""
    try:
        files = md.distribution(dist).files or []
    except md.PackageNotFoundError:
        return None
    for f in files:
        if f.name == name:
            path = Path(f.locate()).resolve()
            if path.is_file():
                return path
    return None


@functools.cache
def preload_cuda_libraries() -> dict:
    """Load the gpu extra's CUDA, rmm and rapids-logger libraries from their wheels (RTLD_GLOBAL, dependency
    order). Returns {library: path | None (not installed) | "error: ..." (found but failed to load)}."""
    out: dict[str, str | None] = {}
    for dist, name in LIBRARIES:
        path = find_library(dist, name)
        if path is None:
            out[name] = None
            continue
        try:
            ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
            out[name] = str(path)
        except OSError as exc:
            out[name] = f"error: {exc}"
    return out


def _import_implicit_gpu():
    """(implicit.gpu, the message it disabled itself with or None); re-imported if an earlier import (before the
    libraries were loaded) left it without CUDA."""
    message = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            module = sys.modules.get("implicit.gpu")
            if module is not None and not module.HAS_CUDA:
                module = importlib.reload(module)
            elif module is None:
                module = importlib.import_module("implicit.gpu")
        except Exception as exc:  # noqa: BLE001 - implicit catches RuntimeError/ImportError; anything else is the reason
            return None, f"{type(exc).__name__}: {exc}"
    for w in caught:
        text = str(w.message)
        if "GPU support" in text:
            found = re.search(r"because of '(.*)'", text, re.S)
            message = found.group(1) if found else text
    return module, message


def _clean(message: str) -> str:
    """implicit's 'Cuda Error: X (/project/./implicit/gpu/utils.h:77)' -> 'X'."""
    message = re.sub(r"^Cuda Error:\s*", "", message.strip())
    return re.sub(r"\s*\([^()]*\.(?:h|cu|cpp):\d+\)$", "", message)


def _driver() -> dict:
    """The NVIDIA driver's kernel module version and the CUDA version it supports, where a driver is present."""
    info: dict = {}
    try:
        text = Path("/proc/driver/nvidia/version").read_text()
        found = re.search(r"Kernel Module\s+(?:for \S+\s+)?([\d.]+)", text)
        if found:
            info["driver"] = found.group(1)
    except OSError:
        pass
    try:
        libcuda = ctypes.CDLL("libcuda.so.1")
        version = ctypes.c_int(0)
        if libcuda.cuDriverGetVersion(ctypes.byref(version)) == 0:
            info["driver_cuda"] = f"{version.value // 1000}.{version.value % 1000 // 10}"
    except (OSError, AttributeError):
        pass
    return info


def _classify(message: str, detail: dict) -> str:
    text = _clean(message)
    symbol = re.search(r"undefined symbol:?\s*(\S+)", text)
    if symbol:
        return (f"ABI mismatch: undefined symbol {symbol.group(1)} (rmm-cu13 version "
                f"{detail.get('rmm-cu13') or 'unknown'}; needs {RMM_WORKS})")
    missing = re.search(r"(lib[\w.+-]+\.so[\d.]*): cannot open shared object file", text)
    if missing:
        name = missing.group(1)
        dist = next((d for d, lib in LIBRARIES if lib == name), None)
        if dist is None:
            return f"library {name} is missing ({text})"
        version = _version(dist)
        why = f"{dist} is not installed" if version is None else f"{dist} {version} has no {name}"
        return f"library {name} is missing ({why})"
    if "driver version is insufficient" in text or "no cuda-capable driver" in text.lower():
        driver = _driver()
        detail.update(driver)
        if "driver_cuda" not in driver:
            return f"no NVIDIA driver ({text})"
        name = " ".join(filter(None, ("NVIDIA driver", driver.get("driver"))))
        return f"{name} is too old (supports CUDA {driver['driver_cuda']}; CUDA 13 needs driver >= {CUDA_DRIVER_MIN})"
    if "no CUDA-capable device" in text or "cudaErrorNoDevice" in text:
        return f"no CUDA device ({text})"
    return f"CUDA extension disabled ({text})"


@functools.cache
def gpu_status() -> GpuStatus:
    """Whether implicit can train on the GPU here, with the reason; computed once per process."""
    detail: dict = {"implicit": _version("implicit"), "rmm-cu13": _version("rmm-cu13")}
    libraries = preload_cuda_libraries()
    detail["libraries"] = dict(libraries)
    module, message = _import_implicit_gpu()
    if message is not None:
        detail["message"] = message
    if module is not None and module.HAS_CUDA:
        try:
            count = int(module.get_device_count())
        except Exception as exc:  # noqa: BLE001
            return GpuStatus(False, _classify(str(exc), detail), detail)
        detail["devices"] = count
        if count < 1:
            return GpuStatus(False, "no CUDA device (0 devices)", detail)
        return GpuStatus(True, f"available: {count} device(s)", detail)
    if module is not None and not module.HAS_RMM:
        return GpuStatus(False, "the gpu extra is not installed", detail)
    if message is None:
        broken = {k: v for k, v in libraries.items() if v and v.startswith("error:")}
        if broken:
            name, error = next(iter(broken.items()))
            return GpuStatus(False, f"library {name} failed to load ({error[len('error: '):]})", detail)
        return GpuStatus(False, "CUDA extension disabled (no message)", detail)
    return GpuStatus(False, _classify(message, detail), detail)
