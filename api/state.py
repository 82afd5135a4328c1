"""The served state: one published run loaded completely (manifest, recs, item names, models, graph store)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from c360.errors import InputError
from c360.io import read_json_file, read_table, require_columns

log = logging.getLogger("c360.api.state")

POPULAR_CACHE = 100  # cold-start items precomputed once per state


@dataclass
class ServedState:
    """Everything a request needs, immutable once built; swapped as one reference on a new publish."""

    run_id: str
    run_dir: Path
    manifest: dict[str, Any]
    served_model: str
    models: dict[str, Any]
    versions: dict[str, str]
    names: dict[str, str]
    recs: dict[str, list[dict[str, Any]]]
    popular: list[dict[str, Any]]
    graph_spec: str
    graph: Any = None
    graph_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def items(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        """ITEM_ID/RANK/SCORE rows → response items with attraction names (ranks renumbered from 1)."""
        names = self.names
        return [{"item_id": item, "name": names.get(item), "score": float(score), "rank": rank}
                for rank, (item, score) in enumerate(zip(frame["ITEM_ID"].tolist(), frame["SCORE"].tolist(), strict=True), start=1)]

    def close(self) -> None:
        """Release the graph store connection."""
        if self.graph is not None:
            try:
                self.graph.close()
            except Exception:  # noqa: BLE001 - closing a dead connection must not fail a swap
                log.warning("closing the graph store of run %s failed", self.run_id, exc_info=True)


def resolve_current(warehouse: Path) -> Path | None:
    """The run directory `warehouse/current` points to (None when nothing is published)."""
    link = Path(warehouse) / "current"
    try:
        return Path(os.path.realpath(link)) if link.exists() else None
    except OSError:
        return None


def _read_manifest(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "manifest.json"
    manifest = read_json_file(path, "manifest not found")
    if manifest.get("status") != "succeeded":
        raise InputError(f"{path}: run status is {manifest.get('status')!r}, not 'succeeded'")
    if not manifest.get("served_model") or manifest["served_model"] not in (manifest.get("models") or {}):
        raise InputError(f"{path}: served_model must name one of 'models'")
    return manifest


def _read_names(run_dir: Path) -> dict[str, str]:
    path = run_dir / "recsys" / "items.csv"
    if not path.is_file():
        return {}
    items = read_table(path, dtype=str)
    require_columns(items, ["ITEM_ID"], str(path))
    if "NAME" not in items.columns:
        return {}
    return dict(zip(items["ITEM_ID"].astype(str), items["NAME"].fillna("").astype(str), strict=True))


def _read_recs(run_dir: Path, names: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    path = run_dir / "recsys" / "recs.csv"
    recs = read_table(path, dtype={"USER_ID": str, "ITEM_ID": str})
    require_columns(recs, ["USER_ID", "ITEM_ID", "RANK", "SCORE"], str(path))
    recs = recs.sort_values(["USER_ID", "RANK"], kind="stable")
    out: dict[str, list[dict[str, Any]]] = {}
    for user, item, rank, score in zip(recs["USER_ID"].tolist(), recs["ITEM_ID"].tolist(),
                                       recs["RANK"].astype(int).tolist(), recs["SCORE"].astype(float).tolist(),
                                       strict=True):
        out.setdefault(user, []).append({"item_id": item, "name": names.get(item), "score": score, "rank": rank})
    return out


def open_graph(spec: str, run_dir: Path):
    """Open the configured GraphStore; returns (store, error message)."""
    try:
        from c360.graph.store import open_store
    except ImportError as exc:
        return None, f"graph store module not available: {exc}"
    try:
        return open_store(spec, run_dir), None
    except Exception as exc:  # noqa: BLE001 - unreachable/missing store: graph endpoints answer 503
        log.warning("graph store %s unavailable: %s", spec, exc)
        return None, f"{type(exc).__name__}: {exc}"


def load_state(run_dir: Path, graph_spec: str = "networkx") -> ServedState:
    """Load one published run completely (blocking; call it off the event loop). Raises on a broken run."""
    from c360.recsys.models import load_model

    run_dir = Path(run_dir)
    manifest = _read_manifest(run_dir)
    models, versions = {}, {}
    for algo, meta in manifest["models"].items():
        path = run_dir / meta.get("path", f"recsys/{algo}")
        try:
            models[algo] = load_model(path)
        except Exception:
            if algo == manifest["served_model"]:
                raise
            log.warning("run %s: model %s at %s not loadable; not offered", run_dir.name, algo, path, exc_info=True)
            continue
        versions[algo] = str(meta.get("version") or f"{manifest.get('run_id', run_dir.name)}:{algo}")
    names = _read_names(run_dir)
    recs = _read_recs(run_dir, names)
    served = manifest["served_model"]
    popular_frame = models[served].popular_items(POPULAR_CACHE)
    graph, graph_error = open_graph(graph_spec, run_dir)
    state = ServedState(run_id=str(manifest.get("run_id") or run_dir.name), run_dir=run_dir, manifest=manifest,
                        served_model=served, models=models, versions=versions, names=names, recs=recs,
                        popular=[], graph_spec=graph_spec, graph=graph, graph_error=graph_error)
    state.popular = state.items(popular_frame)
    log.info("loaded run %s: model %s, %d users with recs, %d items", state.run_id, served, len(recs), len(names))
    return state
