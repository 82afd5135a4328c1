"""Prepare: every input read, checked and standardized in the engine; missing and unreadable values counted; the
comparisons built; the labels read; the candidate blocking rules counted."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from c360.entity_resolution import blocking as B
from c360.entity_resolution import model as M
from c360.entity_resolution.comparisons import Compared, build_comparisons, skewed_counts, tf_from_data
from c360.entity_resolution.phases.run import MatchRun
from c360.entity_resolution.tables import Table
from c360.errors import InputError


@dataclass(frozen=True)
class Input:
    """One input as the engine holds it: the raw table, the standardized one, its counts."""

    path: str
    raw: Table
    csv: bool                   # a CSV read as text
    source_dataset: str
    rows: int
    present: dict[str, int]     # input column -> present (non-blank) values
    std: Table

    @property
    def types(self) -> dict[str, str]:
        """The raw table's column types."""
        return self.raw.columns


@dataclass(frozen=True)
class Prepared:
    """The standardized inputs and what training and blocking need from them."""

    inputs: tuple[Input, ...]
    records: int
    columns: tuple[str, ...]          # the standardized tables' columns
    null_share: dict[str, float]      # per standardized column: share missing
    unparseable: dict[str, int]       # "file:column" -> present values that standardize to missing
    compared: tuple[Compared, ...]
    labelled: pd.DataFrame | None     # small: the labelled pairs
    splink_inputs: tuple              # the standardized tables registered with Splink
    counter: B.Counter                # where the blocking analysis counts
    candidates: tuple[tuple[B.Rule, int], ...]      # candidate prediction rules, comparisons each
    em_candidates: tuple[tuple[B.Rule, int], ...]   # the candidates and exact identifiers: EM blocks
    settings: Any                     # Splink settings with a provisional prediction rule: training's

    @property
    def splink_tables(self):
        """The inputs as a Linker takes them."""
        return list(self.splink_inputs) if len(self.splink_inputs) > 1 else self.splink_inputs[0]


def prepare(run: MatchRun) -> Prepared:
    """Read, check and standardize every input in the engine (InputError naming the file on bad input); count
    missing and unreadable values; build the comparisons (term frequencies from skew aggregates); read the labels;
    count the candidate blocking rules."""
    checked = [_checked(run, p, i) for i, p in enumerate(run.inputs)]   # all, before any work
    records = sum(info["rows"] for _, _, info in checked)
    run.db.size_for(records)
    inputs = [_standardized(run, i, *x) for i, x in enumerate(checked)]
    columns = tuple(inputs[-1].std.columns)   # the handle holds the types the engine gave when it made the table
    present = [run.db.present_shares([x.std], list(columns)) for x in inputs]
    null_share = {c: 1.0 - sum(p[c] for p in present) / records for c in columns}
    stds = [x.std for x in inputs]
    summaries = run.db.value_counts_summaries(stds, tf_from_data(run.cfg))
    compared = build_comparisons(run.cfg, lambda name: skewed_counts(*summaries[name]))
    labelled = _labelled_pairs(run, inputs) if run.labels else None
    splink_inputs = tuple(run.register(x.std, f"er_splink_{i}") for i, x in enumerate(inputs))
    counter = _counter(run, inputs, columns, splink_inputs, records)
    candidates, em_candidates = _measure_candidates(run, counter)
    # training does not use the prediction rules: they are chosen after it, from the trained model (block)
    provisional = [min((x for x in candidates if x[1] > 0), key=lambda x: x[1], default=candidates[0])[0]]
    settings = M.settings(compared, provisional, run.link_type)
    return Prepared(tuple(inputs), records, columns, null_share, _unparseable(run, inputs, present), tuple(compared),
                    labelled, splink_inputs, counter, candidates, em_candidates, settings)


def _checked(run: MatchRun, path, i: int) -> tuple[Table, bool, dict]:
    """(raw table, whether a CSV, its rows and present values) of input `i`, read and checked."""
    raw, csv = run.db.read_input(path, run.cfg, f"er_raw_{i}")
    return raw, csv, run.db.check_input(path, raw, run.cfg, csv)


def _standardized(run: MatchRun, i: int, raw: Table, csv: bool, info: dict) -> Input:
    source = f"input{i}" if len(run.inputs) > 1 else "input0"
    std = run.db.standardize(raw, run.cfg, csv, source, f"er_input_{i}")
    return Input(str(run.inputs[i]), raw, csv, source, info["rows"], info["present"], std)


def _unparseable(run: MatchRun, inputs: list[Input], present: list[dict[str, int]]) -> dict[str, int]:
    """Per input and column, the present values that standardize to missing (they could not be read)."""
    out: dict[str, int] = {}
    for x, shares in zip(inputs, present, strict=True):
        bad: dict[str, int] = {}
        for f in run.cfg.fields:
            bad[f.column] = bad.get(f.column, 0) + x.present[f.column] - shares[f.name]
        out.update({f"{Path(x.path).name}:{c}": n for c, n in bad.items() if n})
    return out


def _counter(run: MatchRun, inputs: list[Input], columns, splink_inputs, records: int) -> B.Counter:
    """Where the blocking analysis counts: the registered inputs on DuckDB (Splink samples above
    B.EXACT_COUNT_RECORDS); on Spark a Bernoulli sample of at most about that many standardized records in a DuckDB
    of the driver (each count would otherwise be a Spark job, ~1-2 s each; the sample keeps the driver's memory
    flat whatever the data's size)."""
    if run.spark is None:
        return B.Counter(splink_inputs, run.link_type, records)
    from splink import DuckDBAPI

    sampled = min(1.0, B.EXACT_COUNT_RECORDS / max(records, 1))
    duck = DuckDBAPI()
    # every standardized column: the prior's deterministic rules count here too
    tables = tuple(duck.register(run.db.sample(x.std, list(columns), sampled, run.seed),
                                 table_name=f"er_count_{i}{run.db.tag}") for i, x in enumerate(inputs))
    return B.Counter(tables, run.link_type, records, sampled)


def _measure_candidates(run: MatchRun, counter: B.Counter):
    """(candidate prediction rules, EM candidates: those and the exact identifiers), each with its comparisons
    counted by Splink's blocking analysis."""
    candidates = B.candidates(run.cfg)
    if not candidates:
        raise InputError(f"{run.cfg.source}: no field to block on (fields: {', '.join(sorted(run.cfg.names))})")
    exact = B.exact_identifiers(run.cfg)
    counts = counter.each(candidates + exact)
    found = tuple(zip(candidates, counts[:len(candidates)], strict=True))
    return found, found + tuple(zip(exact, counts[len(candidates):], strict=True))


def _labelled_pairs(run: MatchRun, inputs: list[Input]) -> pd.DataFrame:
    """The labelled pairs (small) whose records are both in the inputs, with their source datasets (joined in the
    engine), weights and draws (labels.labels_to_pairs)."""
    from c360.entity_resolution.labels import labels_to_pairs

    pairs = pd.concat([labels_to_pairs(p, run.cfg.id) for p in run.labels], ignore_index=True)
    lab = run.db.small_table("er_label_pairs", pairs)
    union = " UNION ALL ".join(f"SELECT unique_id, source_dataset FROM {x.std}" for x in inputs)
    src = f"SELECT unique_id, max(source_dataset) AS source_dataset FROM ({union}) u GROUP BY unique_id"
    return run.db.frame(f"SELECT l.unique_id_l, l.unique_id_r, l.clerical_match_score, l.weight, l.draw, "
                        f"l.draw_round, l.file, "
                        f"a.source_dataset AS source_dataset_l, b.source_dataset AS source_dataset_r "
                        f"FROM {lab} l JOIN ({src}) a ON l.unique_id_l = a.unique_id "
                        f"JOIN ({src}) b ON l.unique_id_r = b.unique_id")
