"""Explanations: Splink waterfall charts (match weight per comparison) for a pair or a match_id, as HTML."""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd

from c360.entity_resolution.config import parse_config
from c360.entity_resolution.standardize import standardize
from c360.errors import InputError
from c360.io import read_json_file
from c360.layout import MatchOutput


def scoring_linker(matched_path: str | Path):
    """(a DuckDB Linker of the run's model over its records, standardized as the run did; those records with their
    match_id): to score pairs of a finished match output (explanations, `er review`)."""
    return _load(matched_path)


def _load(matched_path: str | Path):
    from splink import DuckDBAPI, Linker

    o = MatchOutput.local(matched_path)
    mp, rp, mj = o.matched, o.report, o.model
    for p in (mp, rp, mj):
        if not p.exists():
            raise InputError(f"{p}: not found (run c360 er match first)")
    report = read_json_file(rp)
    cfg = parse_config(report["match_config"], str(rp))
    df = pd.read_parquet(mp)
    std, _ = standardize(df, cfg, "input0")
    std["match_id"] = df["match_id"].to_numpy()
    model = read_json_file(mj)
    if model.get("sql_dialect", "duckdb") != "duckdb":  # a Spark run's model reads Spark SQL: rebuild it for DuckDB
        from c360.entity_resolution.online import duckdb_model
        model = duckdb_model(model, cfg, std.drop(columns=["match_id"]))
    model["link_type"] = "dedupe_only"
    db = DuckDBAPI()
    linker = Linker(db.register(std.drop(columns=["match_id"])), model, log_level="WARNING")
    return linker, std


def _waterfall(linker, std: pd.DataFrame, pairs: list[tuple[str, str]]) -> str:
    rows = std.drop(columns=["match_id"]).set_index("unique_id")
    records = []
    for a, b in pairs:
        ra = {"unique_id": a, **rows.loc[a].to_dict()}
        rb = {"unique_id": b, **rows.loc[b].to_dict()}
        records.extend(linker.inference.score_pair(ra, rb).as_record_list())
    # inline: the page carries vega itself (about 0.8 MB) instead of loading it from a CDN, so it draws offline
    return linker.visualisations.waterfall_chart(records, filter_nulls=False).to_html(inline=True)


def explain_pair(matched_path: str | Path, id_a: str, id_b: str) -> str:
    """HTML waterfall chart of the match weight each comparison contributes for records id_a and id_b."""
    linker, std = _load(matched_path)
    ids = set(std["unique_id"])
    for i in (id_a, id_b):
        if str(i) not in ids:
            raise InputError(f"{matched_path}: record id {i} not found")
    return _waterfall(linker, std, [(str(id_a), str(id_b))])


def explain_match(matched_path: str | Path, match_id: int, max_pairs: int = 10) -> str:
    """HTML waterfall charts for the record pairs of one match_id (up to max_pairs pairs)."""
    linker, std = _load(matched_path)
    members = std.loc[std["match_id"] == int(match_id), "unique_id"].tolist()
    if not members:
        raise InputError(f"{matched_path}: match_id {match_id} not found")
    if len(members) == 1:
        members = members * 2
    pairs = list(itertools.combinations(members, 2))[:max_pairs]
    return _waterfall(linker, std, pairs)
