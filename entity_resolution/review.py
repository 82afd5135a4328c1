"""`c360 er review`: the labeling sets whose answers help a match most, drawn as a probability sample.

The population is the match run's scored pairs (`<matched>.pairs.parquet`) and the pairs it missed (below) less
every pair already answered in the given labels. Each pair falls in one stratum, by its match probability p
against the run's threshold t (log2 odds, as Splink's match weights):

    bridge            linked (p >= t), the only link between two parts of its cluster, and weak (within
                      BRIDGE_BITS of t): a wrong one merges two people; the set shows the whole cluster if small
    uncertain         within BAND_BITS of t: the pairs whose answers move the threshold and the links
    likely match      above the band: how often the model's sure links are right (precision, m)
    likely non-match  below the band: the matches the model misses (recall)
    missed            never scored: found by the candidate blocking rules the run did not predict with (within
                      MISSED_BUDGET comparisons per record), scored by its model at least as high as the band,
                      in two clusters (the matches blocking hid)

and is drawn by systematic sampling over the stratum sorted by blocking rule (match_key), comparison levels and
p, so the draw spreads over rules and levels; every pair of a stratum has the same inclusion probability n_h / N_h.
The allocation favours the uncertain pairs (SHARES; a stratum smaller than its share is taken whole and the rest
goes to the others). `random` draws a simple random sample of the same population instead (a baseline).

The file written (FindMatches format, filled in and given back to `c360 er match --labels`): labeling_set_id, an
empty label, the config's id column, the records' fields, match_probability (of the drawn pair), chosen_by (the
stratum; "context" on a cluster's other records), inclusion_probability, weight (its inverse) and sample
(`r<round>.<draw>`, round = 1 + the draws already answered among the given labels). A person opens it in a
spreadsheet: the ids and the fields are written spreadsheet-safe (c360.io.spreadsheet_safe: a record whose name,
or a source's id, is `=HYPERLINK(...)` shows as text and never runs); whoever reads the file back strips the escape.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from c360.entity_resolution.config import parse_config
from c360.entity_resolution.labels import CONTEXT, labels_to_pairs
from c360.errors import InputError
from c360.io import atomic_path, read_json_file, spreadsheet_safe
from c360.layout import MatchOutput

BAND_BITS = 3.3      # uncertain: |log2 odds(p) - log2 odds(t)| <= this (odds within 10x of the threshold's)
BRIDGE_BITS = 6.6    # a bridge is weak when its log2 odds are within this of the threshold's (odds within 100x)
MAX_CLUSTER_SET = 6  # a bridge's cluster up to this many records is shown whole
MISSED_BUDGET = 20  # comparisons per record the unused candidate rules may add to find missed pairs
SHARES = {"uncertain": 0.5, "bridge": 0.15, "missed": 0.1, "likely match": 0.125, "likely non-match": 0.125}
STRATA = tuple(SHARES)


class NothingToReview(InputError):
    """Every pair of the population is answered already (or excluded)."""


def review(matched: str | Path, labels=(), n: int = 50, out: str | Path = "ask.csv", seed: int = 0,
           random: bool = False, exclude: pd.DataFrame | None = None) -> dict:
    """Draw `n` labeling sets from the scored pairs of the match output `matched` (never a pair answered in
    `labels`, nor one of `exclude`: unique_id_l, unique_id_r, e.g. pairs a steward was unsure of) and write them to
    `out`; return what was drawn: per stratum its pairs, draws and inclusion probability."""
    if n < 1:
        raise InputError(f"--n must be at least 1 (got {n})")
    o = MatchOutput.local(matched)
    for p in (o.matched, o.report, o.pairs):
        if not Path(p).exists():
            raise InputError(f"{p}: not found (run c360 er match first)")
    report = read_json_file(o.report)
    cfg = parse_config(report["match_config"], str(o.report))
    id_col, t = str(report.get("id", cfg.id)), float(report["threshold"])
    answered = [labels_to_pairs(p, id_col) for p in labels or ()]
    done = pd.concat(answered, ignore_index=True) if answered else None
    round_ = 1 + (int(done["draw_round"].max()) if done is not None and len(done) else 0)
    draw = f"r{round_}.{_draw_id(o, labels, n, seed, random)}"

    import duckdb

    con = duckdb.connect()
    try:
        asked = [d[["unique_id_l", "unique_id_r"]] for d in (done, exclude) if d is not None and len(d)]
        frame = _frame(con, o.pairs, pd.concat(asked, ignore_index=True) if asked else None)
        if random:
            chosen, strata = _simple_random(con, frame, n, seed)
        else:
            bridges = _bridges(con, o.matched, id_col, frame, t)
            missed = _missed(con, o, report, t)
            chosen, strata = _stratified(con, frame, t, bridges, missed, n, seed)
        sets = _sets(con, o.matched, id_col, cfg.columns, chosen, draw)
    finally:
        con.close()
    with atomic_path(out) as tmp:
        sets.to_csv(tmp, index=False)
    return {"out": str(out), "sets": int(sets["labeling_set_id"].nunique()), "records": int(len(sets)),
            "sample": draw, "threshold": t, "strata": strata}


def _draw_id(o: MatchOutput, labels, n: int, seed: int, random: bool) -> str:
    """A short id of this draw: the run's report, the labels given, n, seed and mode."""
    h = hashlib.sha1(Path(o.report).read_bytes())
    for p in labels or ():
        h.update(Path(p).read_bytes())
    h.update(f"{n}|{seed}|{random}".encode())
    return h.hexdigest()[:8]


def _parquet(path) -> str:
    """DuckDB's reader of a Parquet file or a directory of parts."""
    p = Path(path)
    src = f"{p}/**/*.parquet" if p.is_dir() else str(p)
    return f"read_parquet('{src.replace(chr(39), chr(39) * 2)}', union_by_name = true)"


def _frame(con, pairs, done: pd.DataFrame | None) -> str:
    """The view of the population: the scored pairs (a < b as text) not answered, with a sort key of blocking rule
    and comparison levels."""
    cols = [r[0] for r in con.sql(f"DESCRIBE SELECT * FROM {_parquet(pairs)}").fetchall()]
    gammas = sorted(c for c in cols if c.startswith("gamma_"))
    key = " || '|' || ".join([*(["CAST(match_key AS VARCHAR)"] if "match_key" in cols else []),
                              *[f"CAST({g} AS VARCHAR)" for g in gammas]]) or "''"
    ids = "CAST(unique_id_l AS VARCHAR) AS l, CAST(unique_id_r AS VARCHAR) AS r"
    con.execute(f"CREATE TEMP TABLE scored AS SELECT least(l, r) AS a, greatest(l, r) AS b, p, k FROM "
                f"(SELECT {ids}, CAST(match_probability AS DOUBLE) AS p, {key} AS k FROM {_parquet(pairs)})")
    if done is None or not len(done):
        done = pd.DataFrame({"unique_id_l": pd.Series(dtype=str), "unique_id_r": pd.Series(dtype=str)})
    a, b = done["unique_id_l"].astype(str).to_numpy(), done["unique_id_r"].astype(str).to_numpy()
    con.register("answered_df", pd.DataFrame({"a": np.minimum(a, b), "b": np.maximum(a, b)}).drop_duplicates())
    con.execute("CREATE TEMP TABLE answered AS SELECT CAST(a AS VARCHAR) AS a, CAST(b AS VARCHAR) AS b "
                "FROM answered_df")
    con.execute("CREATE TEMP VIEW frame AS SELECT s.* FROM scored s ANTI JOIN answered x "
                "ON s.a = x.a AND s.b = x.b")
    return "frame"


def _log2_odds(p: str) -> str:
    q = f"least(greatest({p}, 1e-9), 1 - 1e-9)"
    return f"log2({q} / (1 - {q}))"


def _bridges(con, matched, id_col: str, frame: str, t: float) -> pd.DataFrame:
    """The weak bridges (a, b, cluster) among the linked pairs of the frame: a link at the threshold whose removal
    splits its cluster (of 3 records or more), with log2 odds within BRIDGE_BITS of the threshold's."""
    import networkx as nx

    wt = math.log2(t / (1 - t))
    con.execute(f"CREATE TEMP TABLE ids AS SELECT CAST({_quote(id_col)} AS VARCHAR) AS id, match_id "
                f"FROM {_parquet(matched)}")
    con.execute(f"CREATE TEMP TABLE links AS SELECT s.a, s.b, s.p, x.match_id FROM scored s "
                f"JOIN ids x ON s.a = x.id JOIN ids y ON s.b = y.id "
                f"WHERE s.p >= {t!r} AND x.match_id = y.match_id")
    weak = con.sql(f"SELECT l.a, l.b, l.match_id FROM links l JOIN (SELECT match_id FROM ids GROUP BY 1 "
                   f"HAVING count(*) >= 3) c USING (match_id) JOIN {frame} f ON l.a = f.a AND l.b = f.b "
                   f"WHERE {_log2_odds('l.p')} <= {wt + BRIDGE_BITS!r}").df()
    if not len(weak):
        return pd.DataFrame(columns=["a", "b", "cluster"])
    con.register("weak_df", weak[["match_id"]].drop_duplicates())
    edges = con.sql("SELECT a, b, match_id FROM links JOIN weak_df USING (match_id)").df()
    found = []
    for cluster, e in edges.groupby("match_id"):
        g = nx.Graph(list(zip(e["a"], e["b"], strict=True)))
        found += [(min(u, v), max(u, v), cluster) for u, v in nx.bridges(g)]
    bridges = pd.DataFrame(found, columns=["a", "b", "cluster"])
    return bridges.merge(weak.rename(columns={"match_id": "cluster"}), on=["a", "b", "cluster"])


def _missed(con, o: MatchOutput, report: dict, t: float) -> pd.DataFrame:
    """The pairs the run never scored that it would have linked or doubted (a, b, p, k): found by the candidate
    blocking rules it did not predict with (the fewest comparisons first, within MISSED_BUDGET per record),
    scored by its model, not answered, not in one cluster already, log2 odds at least BAND_BITS below the
    threshold's."""
    from splink import DuckDBAPI, Linker

    from c360.entity_resolution import blocking as B
    from c360.entity_resolution.explain import scoring_linker

    blocking = report.get("blocking") or {}
    used = {r["rule"] for r in blocking.get("rules", [])}
    budget, rules, total = MISSED_BUDGET * int(report.get("records", 0)), [], 0
    for c in sorted((c for c in blocking.get("candidates", []) if c["rule"] not in used),
                    key=lambda c: c["comparisons"]):
        columns = tuple(re.findall(r"l\.(\w+) = r\.\1", c["rule"]))
        if not columns or total + c["comparisons"] > budget:
            break
        rules.append(B.Rule(columns))
        total += c["comparisons"]
    empty = pd.DataFrame({"a": pd.Series(dtype=str), "b": pd.Series(dtype=str), "p": pd.Series(dtype=float),
                          "k": pd.Series(dtype=str)})
    if not rules:
        return empty
    linker, std = scoring_linker(o.matched)
    model = linker.misc.save_model_to_json()
    model["blocking_rules_to_generate_predictions"] = [r.creator().get_blocking_rule("duckdb").as_dict()
                                                       for r in rules]
    cluster = std.set_index("unique_id")["match_id"]
    cluster = cluster[~cluster.index.duplicated()]
    low = 1 / (1 + 2 ** -(math.log2(t / (1 - t)) - BAND_BITS))
    # warning_mode "never": the run's model has the levels EM could not train, as expected (phases.train)
    pred = Linker(DuckDBAPI().register(std.drop(columns=["match_id"])), model, log_level="WARNING") \
        .inference.predict(threshold_match_probability=low, warning_mode="never").as_pandas_dataframe()
    if not len(pred):
        return empty
    a, b = pred["unique_id_l"].astype(str).to_numpy(), pred["unique_id_r"].astype(str).to_numpy()
    v = pd.DataFrame({"a": np.minimum(a, b), "b": np.maximum(a, b), "p": pred["match_probability"].astype(float),
                      "k": "missed|" + pred["match_key"].astype(str)})
    v = v[cluster.reindex(v["a"]).to_numpy() != cluster.reindex(v["b"]).to_numpy()]
    con.register("missed_all", v)
    return con.sql("SELECT m.* FROM missed_all m ANTI JOIN scored s ON m.a = s.a AND m.b = s.b "
                   "ANTI JOIN (SELECT a, b FROM answered) x ON m.a = x.a AND m.b = x.b").df()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _stratified(con, frame: str, t: float, bridges: pd.DataFrame, missed: pd.DataFrame, n: int, seed: int):
    """(the drawn pairs: a, b, p, stratum, inclusion_probability, cluster; per stratum its size, draws and
    inclusion probability)."""
    wt = math.log2(t / (1 - t))
    if len(bridges):
        con.register("bridges_df", bridges.astype({"a": str, "b": str, "cluster": "int64"}))
        joined = f"{frame} f LEFT JOIN bridges_df x ON f.a = x.a AND f.b = x.b"
    else:
        joined = f"{frame} f, (SELECT CAST(NULL AS BIGINT) AS cluster) x"
    con.execute(f"CREATE TEMP TABLE strata AS SELECT f.*, x.cluster, CASE "
                f"WHEN x.cluster IS NOT NULL THEN 'bridge' "
                f"WHEN abs({_log2_odds('f.p')} - {wt!r}) <= {BAND_BITS} THEN 'uncertain' "
                f"WHEN f.p >= {t!r} THEN 'likely match' ELSE 'likely non-match' END AS stratum FROM {joined}")
    if len(missed):
        con.register("missed_df", missed)
        con.execute("INSERT INTO strata SELECT a, b, p, k, NULL, 'missed' FROM missed_df")
    sizes = dict(con.sql("SELECT stratum, count(*) FROM strata GROUP BY 1").fetchall())
    take = allocate({s: int(sizes.get(s, 0)) for s in STRATA}, n)
    rng = np.random.default_rng(seed)
    plan = pd.DataFrame([{"stratum": s, "size": sizes.get(s, 0), "n": k, "step": sizes.get(s, 0) / k,
                          "start": float(rng.uniform(0, sizes.get(s, 0) / k))} for s, k in take.items() if k])
    if not len(plan):
        raise NothingToReview("nothing to review: every scored pair is answered already")
    con.register("plan_df", plan)
    # systematic sampling: the points start + j * step (j = 0..n-1) over positions 0..N-1 of the sorted stratum
    chosen = con.sql("SELECT a, b, p, stratum, cluster, n / size AS inclusion_probability FROM ("
                     "SELECT s.*, x.n, x.size, x.step, x.start, row_number() OVER (PARTITION BY s.stratum "
                     "ORDER BY s.k, s.p, s.a, s.b) - 1 AS i FROM strata s JOIN plan_df x USING (stratum)) "
                     "WHERE greatest(0, ceil((i + 1 - start) / step)) > greatest(0, ceil((i - start) / step)) "
                     "ORDER BY stratum, p").df()
    summary = {s: {"pairs": int(sizes.get(s, 0)), "drawn": int(take[s]),
                   "inclusion_probability": (take[s] / sizes[s]) if sizes.get(s) else 0.0} for s in STRATA}
    return chosen, summary


def allocate(sizes: dict[str, int], n: int) -> dict[str, int]:
    """Draws per stratum: SHARES of n, a stratum smaller than its share taken whole, the rest shared among the
    others by SHARES (largest remainders); never more than the population."""
    take = dict.fromkeys(sizes, 0)
    left, open_ = min(n, sum(sizes.values())), [s for s in sizes if sizes[s] > 0]
    while left > 0 and open_:
        total = sum(SHARES.get(s, 1.0) for s in open_)
        want = {s: left * SHARES.get(s, 1.0) / total for s in open_}
        full = [s for s in open_ if take[s] + want[s] >= sizes[s]]
        if full:
            for s in full:
                left -= sizes[s] - take[s]
                take[s] = sizes[s]
            open_ = [s for s in open_ if s not in full]
            continue
        base = {s: math.floor(want[s]) for s in open_}
        rest = left - sum(base.values())
        for s in sorted(open_, key=lambda s: want[s] - base[s], reverse=True)[:rest]:
            base[s] += 1
        for s in open_:
            take[s] += base[s]
        left = 0
    return take


def _simple_random(con, frame: str, n: int, seed: int):
    """A simple random sample of n pairs of the frame (the baseline)."""
    size = int(con.sql(f"SELECT count(*) FROM {frame}").fetchall()[0][0])
    if not size:
        raise NothingToReview("nothing to review: every scored pair is answered already")
    k = min(n, size)
    chosen = con.sql(f"SELECT a, b, p, 'random' AS stratum, CAST(NULL AS BIGINT) AS cluster, "
                     f"{k} / {size} AS inclusion_probability FROM {frame} "
                     f"ORDER BY hash(a || '|' || b || '|{seed}'), a, b LIMIT {k}").df()
    return chosen, {"random": {"pairs": size, "drawn": k, "inclusion_probability": k / size}}


def _sets(con, matched, id_col: str, columns: list[str], chosen: pd.DataFrame, draw: str) -> pd.DataFrame:
    """The labeling file's rows: per drawn pair its two records, a small bridge cluster's other records beside
    them (chosen_by "context")."""
    have = [r[0] for r in con.sql(f"DESCRIBE SELECT * FROM {_parquet(matched)}").fetchall()]
    fields = [c for c in columns if c in have and c != id_col]
    con.execute(f"CREATE TEMP TABLE records AS SELECT CAST({_quote(id_col)} AS VARCHAR) AS __id, match_id, "
                f"{', '.join(f'CAST({_quote(c)} AS VARCHAR) AS {_quote(c)}' for c in fields) or 'NULL AS __none'} "
                f"FROM {_parquet(matched)}")
    sizes = dict(con.sql("SELECT match_id, count(*) FROM records GROUP BY 1").fetchall())
    rows = []
    for j, x in enumerate(chosen.itertuples(index=False)):
        set_id = f"{draw}-{j + 1:05d}"
        members = [(x.a, x.stratum), (x.b, x.stratum)]
        if x.stratum == "bridge" and not pd.isna(x.cluster) and sizes.get(int(x.cluster), 0) <= MAX_CLUSTER_SET:
            others = con.execute("SELECT __id FROM records WHERE match_id = ? AND __id NOT IN (?, ?) ORDER BY __id",
                                 [int(x.cluster), x.a, x.b]).fetchall()
            members += [(r[0], CONTEXT) for r in others]
        for rid, by in members:
            rows.append({"labeling_set_id": set_id, "__id": rid, "chosen_by": by,
                         "match_probability": x.p if by != CONTEXT else np.nan,
                         "inclusion_probability": float(x.inclusion_probability),
                         "weight": 1.0 / float(x.inclusion_probability), "sample": draw})
    frame = pd.DataFrame(rows)
    con.register("wanted_df", frame[["__id"]].drop_duplicates())
    records = con.sql("SELECT r.* FROM records r JOIN wanted_df USING (__id)").df().drop_duplicates("__id")
    out = frame.merge(records.drop(columns=["match_id"]), on="__id", how="left")
    out.insert(1, "label", "")
    out = out.rename(columns={"__id": id_col})
    for c in (id_col, *fields):   # texts for a person's spreadsheet (read back with from_spreadsheet: labels.py,
        out[c] = out[c].map(lambda v: spreadsheet_safe(v) if isinstance(v, str) else v)   # api.review_queue)
    order = ["labeling_set_id", "label", id_col, *fields, "match_probability", "chosen_by", "inclusion_probability",
             "weight", "sample"]
    return out[order]
