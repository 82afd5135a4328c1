"""`mkdocs build --strict`: every page builds with no warning (a broken link, a page outside the nav), the
generated parts are in it, and nothing in it loads from another host (the site works offline)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.docs.docs_pages import reference


@pytest.mark.slow
def test_site_builds_strict_and_offline(tmp_path):
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=REPO,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    cli = (site / "cli" / "index.html").read_text()
    assert all(f"<code>{name}</code>" in cli for name in reference.cli_commands()), "a command missing from cli/"
    api = (site / "api" / "index.html").read_text()
    missing = [f"{m} {p}" for m, p in reference.app_routes() if f"{m} {p}" not in api]
    assert not missing, f"routes missing from api/: {missing}"
    assert "C360_WAREHOUSE" in (site / "configuration" / "index.html").read_text()
    assert (site / "img" / "graph-schema.svg").read_text().startswith("<svg")
    outside = set()
    for page in site.rglob("*.html"):
        outside |= set(re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="(https?://[^"]+)"', page.read_text()))
    assert not outside, f"the site loads from other hosts: {sorted(outside)}"
