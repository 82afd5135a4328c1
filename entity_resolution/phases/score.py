"""Predict and cluster: the candidate pairs scored, the threshold chosen, the linked records' connected
components."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from c360.entity_resolution import answers
from c360.entity_resolution import standardize_sql as Q
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


def predict(run: MatchRun, prepared: Prepared, blocking: Blocking, name: str = "er_pairs") -> Scored:
    """Score the pairs the prediction rules generate; keep the columns clustering, reports and reviews need (one
    input has no source datasets: 'input0'; the households rule needs the first names' comparison level)."""
    from splink import Linker

    linker = Linker(prepared.splink_tables, blocking.model, log_level="WARNING")
    # "never": its warning lists the levels whose m EM could not train, which the train phase already logged at
    # debug as expected (phases.train._unobserved_levels)
    pred = linker.inference.predict(threshold_match_probability=0.01, warning_mode="never")
    cols = [c.unquote().name for c in pred.columns]
    # the blocking rule that found each pair and its comparison levels: what `er review` stratifies by, and the
    # labels' refit counts (households read gamma_first_name)
    keep = list(PAIR_COLUMNS) + ["match_key"] + [c for c in cols if c.startswith("gamma_")]
    sel = [c if c in cols else f"'input0' AS {c}" for c in keep if c in cols or c.startswith("source_dataset")]
    return Scored(run.db.table(name, f"SELECT {', '.join(sel)} FROM {pred.physical_name}"))


def cluster(run: MatchRun, prepared: Prepared, scored: Scored) -> Clusters:
    """Link the pairs at the threshold unless the households rule vetoes them (relatives: clearly different first
    names); the connected components of the linked records (Splink's clustering, in the engine)."""
    db, pairs = run.db, scored.pairs
    choice = _threshold(run, prepared, pairs)
    at = f"match_probability >= {float(choice['threshold'])!r}"
    guard = relatives_guard(scored.columns if run.cfg.households else [])
    # both computed once with their lineage cut: the connected-components loop reads them at every step
    linked = db.table("er_linked", _linked_sql(run, prepared, pairs, at, guard), persist=True)
    union = " UNION ALL ".join(f"SELECT unique_id, source_dataset FROM {x.std}" for x in prepared.inputs)
    nodes = db.table("er_nodes", f"SELECT {_node('source_dataset', 'unique_id')} AS node_id, unique_id, "
                                 f"source_dataset FROM ({union}) u", persist=True)
    attached = _attached_nodes(run, prepared)
    if attached is None:
        clusters = _components(run, "er_clusters", nodes.name, linked.name)
    else:
        clusters = _attach(run, nodes, linked, attached)
    return Clusters(choice, linked, nodes, clusters, _counts(run, pairs, at, guard))


def _linked_sql(run: MatchRun, prepared: Prepared, pairs: Table, at: str, guard: str) -> str:
    """SQL: the links (node_l, node_r, match_probability): the pairs at the threshold the households rule does not
    veto; with answers drawn by `er review`, less the pairs answered as non-matches, plus those answered as
    matches (the answers themselves are applied)."""
    ends = f"{_node('source_dataset_l', 'unique_id_l')} AS node_l, {_node('source_dataset_r', 'unique_id_r')} AS node_r"
    if not answers.is_weighted(prepared.labelled):
        return f"SELECT {ends}, match_probability FROM {pairs} WHERE {at} AND NOT ({guard})"
    lab = answers.coefficients(prepared.labelled)
    both = pd.concat([lab, lab.rename(columns={"unique_id_l": "unique_id_r", "unique_id_r": "unique_id_l",
                                               "source_dataset_l": "source_dataset_r",
                                               "source_dataset_r": "source_dataset_l"})], ignore_index=True)
    ans = run.db.small_table("er_answers", both[["unique_id_l", "unique_id_r", "source_dataset_l",
                                                 "source_dataset_r", "y"]])
    kept = (f"SELECT {_node('p.source_dataset_l', 'p.unique_id_l')} AS node_l, "
            f"{_node('p.source_dataset_r', 'p.unique_id_r')} AS node_r, p.match_probability FROM {pairs} p "
            f"LEFT JOIN {ans} a ON p.unique_id_l = a.unique_id_l AND p.unique_id_r = a.unique_id_r "
            f"WHERE p.{at} AND NOT ({guard.replace('gamma_', 'p.gamma_')}) AND (a.y IS NULL OR a.y = 1)")
    return f"{kept} UNION ALL SELECT {ends}, 1.0 AS match_probability FROM {ans} " \
           f"WHERE y = 1 AND unique_id_l < unique_id_r"


def _components(run: MatchRun, name: str, nodes: str, links: str) -> Table:
    """node_id -> cluster_id: the connected components of `links` (node_l, node_r) over `nodes` (node_id)."""
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    cc = cluster_pairwise_predictions_at_threshold(
        nodes, links, run.db.db_api, node_id_column_name="node_id", edge_id_column_name_left="node_l",
        edge_id_column_name_right="node_r", threshold_match_probability=None)
    return run.db.table(name, f"SELECT node_id, cluster_id FROM {cc.physical_name}", persist=True)


def _attached_nodes(run: MatchRun, prepared: Prepared) -> Table | None:
    """The nodes of the records the config's `attach` names (None without it, or when no input has its column)."""
    rule, d = run.cfg.attach, run.db.dialect
    if rule is None:
        return None
    values = ", ".join("'" + v.replace("'", "''") + "'" for v in rule.values)
    parts = []
    for x in prepared.inputs:
        if rule.column not in x.types:
            continue
        uid = Q.raw_text(run.cfg.id, x.types[run.cfg.id], d, x.csv) if x.csv else \
            f"CAST({Q.quote(run.cfg.id, d)} AS {d.string})"
        parts.append(f"SELECT {_node(repr(x.source_dataset), uid)} AS node_id FROM {x.raw} "
                     f"WHERE CAST({Q.quote(rule.column, d)} AS {d.string}) IN ({values})")
    if not parts:
        return None
    return run.db.table("er_attached", " UNION ALL ".join(parts), persist=True)


def _attach(run: MatchRun, nodes: Table, linked: Table, attached: Table) -> Table:
    """Clusters when some records attach to the others' (`AttachConfig`): the other records' components from their
    own links; the attached records' components from theirs; each attached component joins the cluster of its most
    probable link to another record (ties: the smallest cluster id), or stays a cluster of its own."""
    db = run.db
    flagged = db.table("er_nodes_flag", f"SELECT n.node_id, a.node_id IS NOT NULL AS att FROM {nodes} n "
                                        f"LEFT JOIN {attached} a ON n.node_id = a.node_id", persist=True)
    ends = (f"FROM {linked} k JOIN {flagged} fl ON k.node_l = fl.node_id JOIN {flagged} fr ON k.node_r = fr.node_id")
    anchor = db.table("er_anchor_links", f"SELECT k.node_l, k.node_r {ends} WHERE NOT fl.att AND NOT fr.att")
    own = db.table("er_attached_links", f"SELECT k.node_l, k.node_r {ends} WHERE fl.att AND fr.att")
    anchor_nodes = db.table("er_anchor_nodes", f"SELECT node_id FROM {flagged} WHERE NOT att")
    attached_nodes = db.table("er_attached_nodes", f"SELECT node_id FROM {flagged} WHERE att")
    anchors = _components(run, "er_anchor_clusters", anchor_nodes.name, anchor.name)
    groups = _components(run, "er_attached_groups", attached_nodes.name, own.name)
    cross = (f"SELECT CASE WHEN fl.att THEN k.node_l ELSE k.node_r END AS a, "
             f"CASE WHEN fl.att THEN k.node_r ELSE k.node_l END AS o, k.match_probability AS p {ends} "
             f"WHERE fl.att <> fr.att")
    best = db.table("er_attached_best", f"SELECT grp, cluster_id FROM (SELECT g.cluster_id AS grp, c.cluster_id, "
                                        f"row_number() OVER (PARTITION BY g.cluster_id ORDER BY x.p DESC, "
                                        f"c.cluster_id) AS rk FROM ({cross}) x JOIN {groups} g ON x.a = g.node_id "
                                        f"JOIN {anchors} c ON x.o = c.node_id) r WHERE rk = 1", persist=True)
    return db.table("er_clusters", f"SELECT node_id, cluster_id FROM {anchors} UNION ALL "
                                   f"SELECT g.node_id, coalesce(b.cluster_id, g.cluster_id) AS cluster_id "
                                   f"FROM {groups} g LEFT JOIN {best} b ON g.cluster_id = b.grp", persist=True)


def _threshold(run: MatchRun, prepared: Prepared, pairs: Table) -> dict:
    """The threshold and why: given (the call's, else the config's), best F1 on labelled matches, or without labels
    the model's expected F1 from a probability histogram, recalibrated at its match-weight valley (T.unlabelled)."""
    given = run.threshold if run.threshold is not None else run.cfg.threshold
    if given is not None:
        return T.choose(given, None, None)
    if answers.is_weighted(prepared.labelled):
        return sample_threshold(run, prepared.labelled, pairs)
    if _has_labelled_matches(prepared.labelled):
        return T.choose(None, _labelled_scores(run, prepared.labelled, pairs), prepared.labelled)
    return T.unlabelled(histogram(run, pairs))


def histogram(run: MatchRun, pairs: Table) -> pd.DataFrame:
    """The scored pairs' match probabilities per bin (T.HISTOGRAM_BINS): n, p_sum, p_min."""
    return run.db.frame(f"SELECT floor(match_probability * {T.HISTOGRAM_BINS}) AS b, count(*) AS n, "
                        f"sum(match_probability) AS p_sum, min(match_probability) AS p_min FROM {pairs} GROUP BY 1")


def sample_threshold(run: MatchRun, labelled: pd.DataFrame, pairs: Table) -> dict:
    """The best F1 estimated from the scored pairs and the answers as a sample (T.from_sample), or the threshold
    chosen without them where they give no evidence of a better one."""
    bins = histogram(run, pairs)
    lab = labelled_sample(run, labelled, pairs, bins)
    choice = T.from_sample(bins, lab["p"].to_numpy(), lab["y"].to_numpy(), lab["cal"].to_numpy(),
                           default=_without_draws(run, labelled, pairs, bins))
    return {**choice, "label_files": sorted(set(labelled["file"]))} if "file" in labelled.columns else choice


def _without_draws(run: MatchRun, labelled: pd.DataFrame, pairs: Table, bins: pd.DataFrame) -> dict:
    """The threshold the run would choose without the drawn answers: best F1 on the hand-made labels (of no draw)
    when they hold matches, else the model's own (T.unlabelled)."""
    hand = labelled[labelled["draw"].fillna("") == ""] if "draw" in labelled.columns else labelled
    if _has_labelled_matches(hand):
        return T.choose(None, _labelled_scores(run, hand, pairs), hand)
    return T.unlabelled(bins)


def labelled_sample(run: MatchRun, labelled: pd.DataFrame, pairs: Table, bins: pd.DataFrame) -> pd.DataFrame:
    """The labelled pairs once each (answers.coefficients: y, c) with their probability p in `pairs` (0: not
    scored) and their coefficient post-stratified over `pairs`' histogram `bins` (cal)."""
    lab = answers.coefficients(labelled)
    scores = _labelled_scores(run, lab, pairs)
    lo = np.minimum(scores["unique_id_l"].astype(str), scores["unique_id_r"].astype(str))
    hi = np.maximum(scores["unique_id_l"].astype(str), scores["unique_id_r"].astype(str))
    p = pd.Series(scores["match_probability"].astype(float).to_numpy(), index=pd.MultiIndex.from_arrays([lo, hi]))
    p = p[~p.index.duplicated()]
    key = pd.MultiIndex.from_arrays([lab["unique_id_l"], lab["unique_id_r"]])
    lab = lab.assign(p=p.reindex(key).fillna(0.0).to_numpy())
    return lab.assign(cal=answers.calibrated(lab["p"], lab["c_known"], lab["c_drawn"], bins))


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
