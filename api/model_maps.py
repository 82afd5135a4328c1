"""Per-user model arrays shared between workers: the factor matrices of a loaded model memory-mapped from its saved
file instead of held in each worker's memory.

A saved model's `model.npz` (recsys.base: `np.savez`, members stored uncompressed) holds plain .npy files, so each
large member can be mapped read-only where it lies in the archive. Serving only reads the factors (scores, fold-in
of live events against the fixed item factors), so the pages are the page cache's, shared by every worker, and only
those a request touches count in a worker's PSS. ALS user factors are n_users x factors float32: 256 MB per worker at
a million users and 64 factors, were they loaded.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import numpy as np

MIN_MAPPED_BYTES = 1 << 20  # smaller members stay in memory: mapping them saves nothing
_LOCAL_HEADER = 30           # fixed part of a zip local file header; name and extra field follow it


def mapped_npz(path: str | Path, min_bytes: int = MIN_MAPPED_BYTES) -> dict[str, np.ndarray]:
    """The members of an uncompressed .npz of at least `min_bytes`, as copy-on-write memory maps ({name: array},
    names without `.npy`); compressed or object members are left out (load those with np.load)."""
    path = Path(path)
    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as archive, open(path, "rb") as f:
        for info in archive.infolist():
            if info.compress_type != zipfile.ZIP_STORED or info.file_size < min_bytes \
                    or not info.filename.endswith(".npy"):
                continue
            f.seek(info.header_offset)
            name_len, extra_len = struct.unpack("<HH", f.read(_LOCAL_HEADER)[26:30])
            f.seek(info.header_offset + _LOCAL_HEADER + name_len + extra_len)
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) \
                else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(f)
            if dtype.hasobject:
                continue
            # copy-on-write: implicit's Cython solver wants writable buffers though it only reads them; pages stay
            # the page cache's (shared) unless written, and a write never reaches the file
            out[info.filename[:-4]] = np.memmap(path, dtype=dtype, mode="c", offset=f.tell(), shape=shape,
                                                order="F" if fortran else "C")
    return out


def share_factors(model, directory: str | Path, min_bytes: int = MIN_MAPPED_BYTES):
    """`model` (just loaded from `directory`) with its factor matrices of at least `min_bytes` replaced by maps of the
    saved file; models without factors are returned unchanged."""
    from c360.recsys.base import MODEL_FILE, FactorModel

    if not isinstance(model, FactorModel):
        return model
    mapped = mapped_npz(Path(directory) / MODEL_FILE, min_bytes)
    if mapped:
        model.restore_from(model.data, {**model.model_arrays(), **mapped})
    return model
