"""Predict and cluster: the candidate pairs scored, the threshold chosen, the linked records' connected
components."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from c360.entity_resolution import threshold as T
from c360.entity_resolution.phases.block import Blocking
from c360.entity_resolution.phases.prepare import Prepared
from c360.entity_resolution.phases.run import MatchRun
from c360.entity_resolution.tables import Table

# the columns clustering and the report read (Splink's table has many more)
PAIR_COLUMNS = ("unique_id_l", "unique_id_r", "source_dataset_l", "source_dataset_r", "match_probability",
                "match_weight")


@dataclass(frozen=True)
class Scored:
    """The scored pairs (probability >= 0.01)."""

    pairs: Table

    @property
    def columns(self) -> list[str]:
        return list(self.pairs.columns)


@dataclass(frozen=True)
class Clusters:
    """The threshold and why; the linked pairs, every record as a node, each node's cluster; the pair counts."""

    threshold_choice: dict
    linked: Table     # node_l, node_r, match_probability
    nodes: Table      # every record: node_id, unique_id, source_dataset
    clusters: Table   # node_id -> cluster_id
    counts: dict      # pairs scored / linked / guarded, histogram

    @property
    def threshold(self) -> float:
        return float(self.threshold_choice["threshold"])


def predict(run: MatchRun, prepared: Prepared, blocking: Blocking) -> Scored:
    """Score the pairs the prediction rules generate; keep the columns clustering and reports need (one input has
    no source datasets: 'input0'; the households rule needs the first names' comparison level)."""
    from splink import Linker

    linker = Linker(prepared.splink_tables, blocking.model, log_level="WARNING")
    pred = linker.inference.predict(threshold_match_probability=0.01)
    keep = list(PAIR_COLUMNS) + [c for c in ("gamma_first_name",) if run.cfg.households and run.cfg.get("first_name")]
    cols = [c.unquote().name for c in pred.columns]
    sel = [c if c in cols else f"'input0' AS {c}" for c in keep if c in cols or c.startswith("source_dataset")]
    return Scored(run.db.table("er_pairs", f"SELECT {', '.join(sel)} FROM {pred.physical_name}"))


def cluster(run: MatchRun, prepared: Prepared, scored: Scored) -> Clusters:
    """Link the pairs at the threshold unless the households rule vetoes them (relatives: clearly different first
    names); the connected components of the linked records (Splink's clustering, in the engine)."""
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    db, pairs = run.db, scored.pairs
    choice = _threshold(run, prepared, pairs)
    at, guard = f"match_probability >= {float(choice['threshold'])!r}", relatives_guard(scored.columns)
    # both computed once with their lineage cut: the connected-components loop reads them at every step
    linked = db.table("er_linked", f"SELECT {_node('source_dataset_l', 'unique_id_l')} AS node_l, "
                                   f"{_node('source_dataset_r', 'unique_id_r')} AS node_r, match_probability "
                                   f"FROM {pairs} WHERE {at} AND NOT ({guard})", persist=True)
    union = " UNION ALL ".join(f"SELECT unique_id, source_dataset FROM {x.std}" for x in prepared.inputs)
    nodes = db.table("er_nodes", f"SELECT {_node('source_dataset', 'unique_id')} AS node_id, unique_id, "
                                 f"source_dataset FROM ({union}) u", persist=True)
    cc = cluster_pairwise_predictions_at_threshold(
        nodes.name, linked.name, db.db_api, node_id_column_name="node_id", edge_id_column_name_left="node_l",
        edge_id_column_name_right="node_r", threshold_match_probability=None)
    clusters = db.table("er_clusters", f"SELECT node_id, cluster_id FROM {cc.physical_name}", persist=True)
    return Clusters(choice, linked, nodes, clusters, _counts(run, pairs, at, guard))


def _threshold(run: MatchRun, prepared: Prepared, pairs: Table) -> dict:
    """The threshold and why: given (the call's, else the config's), best F1 on labelled matches, or the model's
    expected F1 from a probability histogram."""
    given = run.threshold if run.threshold is not None else run.cfg.threshold
    if given is not None:
        return T.choose(given, None, None)
    if _has_labelled_matches(prepared.labelled):
        return T.choose(None, _labelled_scores(run, prepared.labelled, pairs), prepared.labelled)
    return T.from_histogram(run.db.frame(
        f"SELECT floor(match_probability * {T.HISTOGRAM_BINS}) AS b, count(*) AS n, "
        f"sum(match_probability) AS p_sum, min(match_probability) AS p_min FROM {pairs} GROUP BY 1"))


def _counts(run: MatchRun, pairs: Table, at: str, guard: str) -> dict:
    """Pairs scored, linked and vetoed by the households rule; the match-probability histogram (20 bins)."""
    row = run.db.one(f"SELECT count(*), sum(CASE WHEN {at} AND NOT ({guard}) THEN 1 ELSE 0 END), "
                     f"sum(CASE WHEN {at} AND ({guard}) THEN 1 ELSE 0 END) FROM {pairs}")
    hist = dict(run.db.rows(f"SELECT least(CAST(floor(match_probability * 20) AS INT), 19) AS b, count(*) "
                            f"FROM {pairs} GROUP BY 1"))
    return {"pairs_scored": int(row[0]), "pairs_linked": int(row[1] or 0), "relatives_guarded": int(row[2] or 0),
            "histogram": [int(hist.get(b, 0)) for b in range(20)]}


def relatives_guard(pair_columns: list[str]) -> str:
    """SQL: true where a scored pair looks like two relatives, not one person: both first names present, clearly
    different (Jaro-Winkler level 'else', nicknames and swaps already excluded) - vetoes the link."""
    return "gamma_first_name = 0" if "gamma_first_name" in pair_columns else "FALSE"


def _node(source: str, uid: str) -> str:
    # unique_id alone may repeat across two linked inputs
    return f"concat({source}, '-__-', {uid})"


def _has_labelled_matches(labelled: pd.DataFrame | None) -> bool:
    return labelled is not None and len(labelled) > 0 and bool((labelled["clerical_match_score"] >= 0.5).any())


def _labelled_scores(run: MatchRun, labelled: pd.DataFrame, pairs: Table) -> pd.DataFrame:
    """The scored pairs that are labelled (small: labels are), either way round."""
    lab = run.db.small_table("er_labelled", labelled[["unique_id_l", "unique_id_r"]])
    return run.db.frame(" UNION ALL ".join(
        f"SELECT p.unique_id_l, p.unique_id_r, p.match_probability FROM {pairs} p JOIN {lab} l "
        f"ON p.unique_id_l = l.{a} AND p.unique_id_r = l.{b}" for a, b in (("unique_id_l", "unique_id_r"),
                                                                          ("unique_id_r", "unique_id_l"))))
