"""Input paths checked before any work starts: a command that reads a missing file fails at once, naming the option
and the path, instead of after Spark has started (seconds) or data has been generated (tens of seconds)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Collection, Iterable, Mapping

from c360.errors import InputError


def _paths(value) -> Iterable[str]:
    """An option's value as paths: one path, a list of them (an `append` option), or none."""
    if value is None:
        return ()
    if isinstance(value, (str, os.PathLike)):
        return (os.fspath(value),)
    return (os.fspath(v) for v in value if v is not None)


def require_inputs(inputs: Mapping[str, object], dirs: Collection[str] = ()) -> None:
    """Raise InputError for the first option whose path does not exist (or is not a directory, for an option in
    `dirs`). `inputs` maps an option's name as the user knows it (`--sources`, `nightly.visits`) to its value; a
    Hadoop URI (hdfs://, s3a://) is left to its file system, read where the job runs."""
    from c360.hadoop_fs import is_uri

    for option, value in inputs.items():
        for path in _paths(value):
            if is_uri(path):
                continue
            p = Path(path)
            if not p.exists():
                raise InputError(f"{option} {path}: no such file or directory")
            if option in dirs and not p.is_dir():
                raise InputError(f"{option} {path}: not a directory")


def require_args(args, *options: str, dirs: Collection[str] = ()) -> None:
    """`require_inputs` over the argparse options named (`--input`, ...), read from `args`."""
    require_inputs({opt: getattr(args, opt.lstrip("-").replace("-", "_"), None) for opt in options}, dirs=dirs)


def require_files(option: str, directory, names: Iterable[str], layout: str | None = None) -> None:
    """Raise InputError naming the option, the directory and every required file it lacks: `names` are paths
    relative to the directory, or glob patterns one match of which is enough (`userVisits-sigir17/*.csv`). Checked
    before any work starts, like `require_inputs` (the directory itself is its business); a Hadoop URI is left to
    its file system."""
    from c360.hadoop_fs import is_uri

    if directory is None or is_uri(os.fspath(directory)):
        return
    root = Path(directory)
    missing = [name for name in names if not any(p.is_file() for p in root.glob(name))]
    if missing:
        what = f" ({layout})" if layout else ""
        raise InputError(f"{option} {os.fspath(directory)}: missing {', '.join(missing)}{what}")
