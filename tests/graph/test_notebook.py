"""The exploration notebook runs top to bottom on the embedded store and on the Gremlin Server."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import REPO

NOTEBOOK = REPO / "notebooks" / "explore_customer360.ipynb"


def _run(graph: str, data_dir: Path, monkeypatch) -> nbformat.NotebookNode:
    monkeypatch.setenv("C360_GRAPH", graph)
    monkeypatch.setenv("C360_NOTEBOOK_DATA", str(data_dir))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    return nb


def _text(nb) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            out.append(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")))
    return "\n".join(out)


@pytest.mark.slow
def test_notebook_on_embedded_store(sample_dir, monkeypatch):
    nb = _run("networkx", sample_dir, monkeypatch)
    text = _text(nb)
    assert "unlinked record pairs in the raw graph: [('1001-auto', '5001-property')]" in text
    assert "match 100 joins ['1001-auto', '5001-property']" in text
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


@pytest.mark.slow
@pytest.mark.gremlin
def test_notebook_on_gremlin(sample_dir, gremlin_url, monkeypatch):
    text = _text(_run(os.environ.get("C360_GRAPH", "") if os.environ.get("C360_GRAPH", "").startswith(
        ("gremlin://", "wss://")) else gremlin_url, sample_dir, monkeypatch))
    assert "match 100 joins ['1001-auto', '5001-property']" in text
