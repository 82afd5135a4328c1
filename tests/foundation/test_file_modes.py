"""Whatever a `c360` command writes is its owner's only (customer data: 0600 files, 0700 directories), whatever
umask the shell that started it had."""

from __future__ import annotations

import os
import stat
import subprocess
import sys


def test_a_command_writes_owner_only_files_under_a_permissive_umask(tmp_path):
    out = tmp_path / "generated"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run(["sh", "-c", f'umask 022 && exec "{sys.executable}" -m c360 er generate --customers 5 '
                                f'--out "{out}"'], check=True, env=env, capture_output=True, timeout=300)
    written = [out, *out.rglob("*")]
    assert len(written) > 3
    loose = [f"{p.relative_to(tmp_path)} {stat.filemode(p.stat().st_mode)}" for p in written
             if p.stat().st_mode & 0o077]
    assert loose == []
