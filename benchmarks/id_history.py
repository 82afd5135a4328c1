"""The history of every match_id over two nightlies on edited sources (issue 26): every change listed, no id reused.

    python benchmarks/id_history.py [--customers 2000] [--seed 0] [--added 100] [--merges 5] [--splits 5]
                                    [--removed 5] [--commits 3] [--work DIR]

`c360 er generate` makes the people (the generator's truth judges, it never matches). Nightly 1 (`c360 nightly
--engine duckdb`, the product's path: the match step carries ids from the published run) runs on the sources less
`--added` people. Then the script picks, among run 1's clusters that are exactly one person's records, pairs made to
look alike (every record of the second gets the values of one record of the first: the model should merge them),
people made to look like two (the records with the largest ids get the values of a stranger, a person of another
generator seed: it should split them, the largest part keeping the id), people whose records are removed (their id
retired) and people who get a new record. Between the nightlies the API over the published run 1 commits records
(`POST /customers/match?commit=true`): one of each of `--commits` new people, and a copy of a record of each of
`--commits` known people. Nightly 2 runs on the sources with the edits and the added people, and carries the
committed records. Measured on run 2's `matched.parquet.id_changes.parquet`:

- listed: the file equals the changes computed record by record in pandas from run 1's ids (plus the committed
  records') and run 2's (by their definition in c360.entity_resolution.id_changes), one row per previous id and per
  new id;
- scripted: each scripted merge, split, retirement and added person appears as scripted (the survivor and the split
  part's id by the rule of stable_ids); unscripted: any other id not kept with the records it had, or a new id that
  holds no added or split-off record: the retrained model's own changes on records the script did not touch (listed
  with the truth's people on both sides, and whether run 2's clusters are right about them);
- reuse: an id of run 2 that run 1 (or the API) had holds records it held then, and records of a person it held then
  (the truth); no new id is one handed out before (run 1's lineage: at most its `max_match_id`; the API's commits);
  no retired id is in run 2;
- and where the product shows it: the survivors' `merged_from` in run 2's graph, and the API over the published run 2
  (a merged id 308 to its survivor, a split id's `split_into`, a retired id 404).

Prints markdown tables; exits 1 when the file lists anything but what the clusters did, a scripted change is
missing, or an id was reused.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from c360.entity_resolution import sources as S
from c360.entity_resolution.id_changes import CHANGES, COLUMNS
from c360.io import owner_only, read_json_file
from c360.layout import MatchOutput, Warehouse
from c360.recsys.sigir17 import DEFAULT_DIR

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.entity_resolution.id_history import match_ids, pure_clusters, reference  # noqa: E402

# the merged fields a scripted edit overwrites (those of a person; id and source stay)
FIELDS = ("first_name", "last_name", "gender", "company", "date_of_birth", "home_phone", "ssn", "email",
          *S.ADDRESS_COLUMNS)
VISITS = (("userVisits-sigir17", "userVisits-epcot-allPOI.csv"), ("poiList-sigir17", "POI-epcot.csv"))
READER = {"X-API-Key": "bench-reader"}
WRITER = {"X-API-Key": "bench-writer"}


def c360(*args: str) -> float:
    """Run `c360 ARGS` (this interpreter's install); its seconds. A failure ends the benchmark with its output."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "c360", *args], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"c360 {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return time.perf_counter() - t0


# ---- the sources, edited through their declarations (c360.entity_resolution.sources) ---------------------------

class Sources:
    """A sources directory in memory: the five tables, truth.csv and labels.csv, as text."""

    FILES = (*(t.file for t in S.SOURCE_TABLES), "truth.csv", "labels.csv")

    def __init__(self, tables: dict[str, pd.DataFrame]):
        self.tables = tables

    @classmethod
    def read(cls, d: Path) -> Sources:
        return cls({f: pd.read_csv(d / f, dtype=str, keep_default_na=False) for f in cls.FILES})

    def copy(self) -> Sources:
        return Sources({f: df.copy() for f, df in self.tables.items()})

    def write(self, d: Path) -> Path:
        d.mkdir(parents=True, exist_ok=True)
        for f, df in self.tables.items():
            df.to_csv(d / f, index=False)
        return d

    @staticmethod
    def _line(record_id: str) -> tuple[S.CustomerTable, str]:
        """(the customer table of a merged record id, its key in that table)."""
        for t in S.CUSTOMER_TABLES:
            if record_id.endswith(t.suffix):
                return t, record_id[: -len(t.suffix)]
        raise ValueError(f"{record_id}: no customer table has this suffix")

    def drop(self, record_ids) -> None:
        """Remove records: their customer rows, the rows keyed by them (address, vehicles), truth and labels."""
        record_ids = set(record_ids)
        for t in S.CUSTOMER_TABLES:
            keys = {k for tt, k in map(self._line, record_ids) if tt is t}
            for table in S.SOURCE_TABLES:   # the tables of this line carry its key column
                if t.key_column in table.columns:
                    df = self.tables[table.file]
                    self.tables[table.file] = df[~df[t.key_column].isin(keys)]
        self.tables["truth.csv"] = self.tables["truth.csv"].query("record_id not in @record_ids")
        labels = self.tables["labels.csv"]
        self.tables["labels.csv"] = labels[~labels["id"].isin(record_ids)]

    def set_fields(self, record_id: str, values: pd.Series) -> None:
        """Give one record the person's fields of `values` (merged names; missing ones become empty)."""
        t, key = self._line(record_id)
        for table in (t, t.address):
            df = self.tables[table.file]
            rows = df[t.key_column] == key
            for f in FIELDS:
                col = t.source_names([f])[0] if table is t else f
                if col in table.columns and col not in getattr(table, "drops", ()) and col != t.key_column:
                    v = values.get(f)
                    df.loc[rows, col] = "" if v is None or pd.isna(v) else str(v)


# ---- the script ---------------------------------------------------------------------------------------------

def script(ids1: pd.Series, person: pd.Series, household: pd.Series, args, rng) -> dict:
    """Pick the people to merge, split, remove and commit a record of among run 1's pure clusters, each of another
    household."""
    pure = pure_clusters(ids1, person)
    pure = pure.assign(household=pure["person"].map(household.groupby(person).first()))
    pure = pure.sample(frac=1.0, random_state=int(rng.integers(1 << 31))).drop_duplicates("household")
    splits = pure[pure["size"] >= 2].head(args.splits)
    rest = pure[~pure["match_id"].isin(splits["match_id"])]
    n = {"merges": 2 * args.merges, "removed": args.removed, "known": args.commits}
    picked, at = {}, 0
    for name, k in n.items():
        picked[name] = [int(m) for m in rest["match_id"].iloc[at: at + k]]
        at += k
    if len(splits) < args.splits or len(picked["known"]) < args.commits:
        sys.exit("too few people of their own cluster in run 1 for the script: generate more customers")
    records = ids1.groupby(ids1).groups
    return {"merges": list(zip(picked["merges"][::2], picked["merges"][1::2], strict=True)),
            "splits": [int(m) for m in splits["match_id"]], "removed": picked["removed"], "known": picked["known"],
            "records": {int(m): sorted(records[m]) for m in pure["match_id"]}}


def edit(base: Sources, plan: dict, strangers: pd.DataFrame, merged: pd.DataFrame) -> tuple[Sources, dict]:
    """Run 2's sources: `base` with the plan's edits; {split id: its records made a stranger's}."""
    out = base.copy()
    rec = plan["records"]
    for a, b in plan["merges"]:
        like = merged.loc[rec[a][0]]
        for rid in rec[b]:
            out.set_fields(rid, like)
    split_off = {}
    for i, c in enumerate(plan["splits"]):
        records = rec[c]
        split_off[c] = records[len(records) - len(records) // 2:]   # the larger keys: the smaller part, or a tie
        for rid in split_off[c]:
            out.set_fields(rid, strangers.iloc[i])
    out.drop([rid for g in plan["removed"] for rid in rec[g]])
    return out, split_off


def commit(warehouse: Path, plan: dict, strangers: pd.DataFrame, merged: pd.DataFrame, person: pd.Series) -> dict:
    """Between the nightlies, through the API over the published run 1 (POST /customers/match?commit=true): a record
    of each new person (strangers) and a new record of each of the plan's `known` people (a copy of one of theirs).
    {record id: (the match_id the API gave it, new_match, the person)}."""
    from fastapi.testclient import TestClient

    from c360.api.app import create_app
    from c360.entity_resolution.config import KNOWN_ROLES
    from c360.settings import Settings

    def body(rid: str, values: pd.Series) -> dict:
        fields = {f: str(values[f]) for f in KNOWN_ROLES if f in values.index and pd.notna(values[f])}
        return {"id": rid, "source": "property", **fields}

    asks = [(f"live{i}-property", strangers.iloc[i], f"committed-{i}") for i in range(len(plan["known"]))]
    asks += [(f"live{len(asks) + i}-property", merged.loc[plan["records"][m][0]], person[plan["records"][m][0]])
             for i, m in enumerate(plan["known"])]
    app = create_app(Settings(warehouse=warehouse, graph="networkx", api_keys={WRITER["X-API-Key"]: "writer"}))
    out = {}
    with TestClient(app) as client:
        for rid, values, who in asks:
            r = client.post("/customers/match", params={"commit": "true"}, json=body(rid, values), headers=WRITER)
            if r.status_code != 200:
                sys.exit(f"commit of {rid}: {r.status_code} {r.text}")
            out[rid] = (int(r.json()["match_id"]), bool(r.json()["new_match"]), who)
    return out


# ---- what run 2 says, against the script and against its definition -----------------------------------------

def expected(plan: dict, split_off: dict, committed: dict, ids2: pd.Series, added: set) -> dict[int, tuple]:
    """{id: (change, into)} the script calls for (the survivor and the split part by the rule of stable_ids)."""
    rec = plan["records"]
    out = {}
    for a, b in plan["merges"]:   # the cluster keeps the id of which it holds most records (ties: the smaller id)
        keep, gone = sorted((a, b), key=lambda m: (-len(rec[m]), m))
        out[keep], out[gone] = ("kept", ()), ("merged", (keep,))
    for c in plan["splits"]:
        part = tuple(int(m) for m in ids2.reindex(split_off[c]).dropna().astype(int).unique())
        out[c] = ("split", part)
        out.update({m: ("new", ()) for m in part})
    out.update({g: ("retired", ()) for g in plan["removed"]})
    out.update({mid: ("kept", ()) for mid, _new, _who in committed.values()})   # a committed record's id survives
    out.update({int(m): ("new", ()) for m in ids2[ids2.index.isin(added)].unique()})
    return out


def measure(prev: pd.Series, ids2: pd.Series, person: pd.Series, want: dict, added: set, changes: pd.DataFrame,
            issued: int) -> dict:
    """The file against its definition and the script, and the reuse checks (see the module docstring). `prev`:
    run 1's ids and the committed records'; `issued`: the highest id handed out before run 2."""
    got = {int(r.match_id): (r.change, [int(x) for x in r.into], int(r.records_before), int(r.records_after))
           for r in changes.itertuples(index=False)}
    try:
        ref = reference(prev, ids2)
    except AssertionError as exc:   # an id kept by a part that is not its largest
        ref = {"rule of stable_ids broken": str(exc)}
    rows = {c: {"change": c, "scripted": 0, "in the file": 0, "as scripted": 0, "unscripted": 0} for c in CHANGES}
    for m, (change, into) in want.items():
        rows[change]["scripted"] += 1
        rows[change]["as scripted"] += int(m in got and got[m][0] == change and tuple(got[m][1]) == into)
    unscripted = sorted(m for m, g in got.items() if m not in want and not (g[0] == "kept" and g[2] == g[3]))
    for g in got.values():
        rows[g[0]]["in the file"] += 1
    for m in unscripted:
        rows[got[m][0]]["unscripted"] += 1
    held = prev.groupby(prev).groups
    people1 = person.reindex(prev.index).groupby(prev).agg(set)
    people2 = person.reindex(ids2.index).groupby(ids2).agg(set)
    old = [m for m in people2.index if m in held]
    new = [m for m, g in got.items() if g[0] == "new"]
    return {"rows": list(rows.values()), "equal": got == ref, "file_rows": len(got), "reference_rows": len(ref),
            "differences": sorted(m for m in set(got) | set(ref) if got.get(m) != ref.get(m))[:20],
            "missing": sum(r["scripted"] - r["as scripted"] for r in rows.values()),
            "unscripted": [_drift(m, got[m], prev, ids2, person) for m in unscripted], "old": len(old),
            "other_records": sum(1 for m in old if not (ids2.reindex(held[m]) == m).any()),
            "other_person": sum(1 for m in old if not people1[m] & people2[m]),
            "new": len(new), "new_issued_before": sum(1 for m in new if m in held or m <= issued),
            "min_new": min(new, default=None), "issued": issued,
            "retired_in_run2": sum(1 for m, g in got.items() if g[0] == "retired" and m in people2.index),
            "added_under_old_id": int(ids2[ids2.index.isin(added)].isin(list(held)).sum())}


def _drift(m: int, change: list, prev: pd.Series, ids2: pd.Series, person: pd.Series) -> dict:
    """An unscripted change: the truth's people of the id before and of the clusters holding its records now, and
    what run 2 did to them (joined different people, parted one person's records, or set run 1 right)."""
    def people(records) -> list:
        return sorted(set(person.reindex(records).dropna()))

    before = people(prev.index[prev == m])
    now = {int(x): people(ids2.index[ids2 == x]) for x in [m, *change[1]] if (ids2 == x).any()}
    everyone = set(before).union(*now.values())
    clusters = person.reindex(ids2.index).to_frame("p").assign(m=ids2).groupby("p")["m"].nunique()
    verdict = ("run 2 joined different people" if any(len(p) > 1 for p in now.values()) and len(before) <= 1 else
               "run 2 parted one person's records" if any(clusters.get(p, 0) > 1 for p in everyone) else
               "run 2 set run 1 right")
    return {"match_id": str(m), "change": change[0], "into": ", ".join(map(str, change[1])) or "-",
            "records before / now": f"{change[2]} / {change[3]}", "people before": ", ".join(before) or "-",
            "people now": "; ".join(f"{x}: {', '.join(p)}" for x, p in now.items()) or "-", "verdict": verdict}


def graph_merged_from(run_root: Path) -> dict[int, list[int]]:
    """{match_id: merged_from} of run 2's exported match vertices."""
    from c360.graph.neptune_parts import read_graph
    from c360.graph.schema import MERGED_FROM_SEP
    from c360.layout import RunLayout

    vertices, _ = read_graph(RunLayout(run_root).graph_dir)
    return {int(v.id): sorted(int(x) for x in str(v.props["merged_from"]).split(MERGED_FROM_SEP))
            for v in vertices if v.label == "match" and v.props.get("merged_from")}


def api_answers(warehouse: Path, plan: dict, want: dict) -> dict:
    """What the API over the published run says of the scripted ids: merged 308 to the survivor, split ids'
    split_into, retired 404."""
    from fastapi.testclient import TestClient

    from c360.api.app import create_app
    from c360.settings import Settings

    ok = {"merged 308 to the survivor": 0, "split answers split_into": 0, "retired 404": 0}
    app = create_app(Settings(warehouse=warehouse, graph="networkx", api_keys={READER["X-API-Key"]: "reader"}))
    with TestClient(app) as client:
        for m, (change, into) in want.items():
            r = client.get(f"/customer360/{m}", headers=READER, follow_redirects=False)
            if change == "merged":
                ok["merged 308 to the survivor"] += int(r.status_code == 308 and
                                                        r.headers["location"].endswith(f"/customer360/{into[0]}"))
            elif change == "split" and m in plan["splits"]:
                ok["split answers split_into"] += int(r.status_code == 200 and
                                                      r.json().get("split_into") == [str(x) for x in into])
            elif change == "retired":
                ok["retired 404"] += int(r.status_code == 404 and "retired" in r.json().get("message", ""))
    return ok


# ---- the benchmark ------------------------------------------------------------------------------------------

def nightly_config(path: Path, visits: Path) -> Path:
    """A small nightly: DuckDB's match, one park's visits, the popularity recommender, the graph exported locally."""
    config = {"er": {"engine": "duckdb"}, "nightly": {"visits": str(visits)},
              "recsys": {"algorithms": ["popularity"], "serve": "popularity", "session": False},
              "graph": {"export_engine": "local"}}
    path.write_text(yaml.safe_dump(config))
    return path


def _epcot(root: Path) -> Path:
    for sub, name in VISITS:
        (root / sub).mkdir(parents=True, exist_ok=True)
        (root / sub / name).write_bytes((DEFAULT_DIR / sub / name).read_bytes())
    return root


def run(args, work: Path) -> int:
    rng = np.random.default_rng(args.seed)
    seconds = {}
    seconds["generate"] = c360("er", "generate", "--customers", str(args.customers), "--seed", str(args.seed),
                               "--out", str(work / "generated"))
    c360("er", "generate", "--customers", str(args.splits + args.commits + 10), "--seed", str(args.seed + 1000),
         "--out", str(work / "strangers"))
    base = Sources.read(work / "generated")
    truth = base.tables["truth.csv"].set_index("record_id")
    person, household = truth["person_id"], truth["household_id"]
    later = set(rng.choice(sorted(person.unique(), key=int), size=args.added, replace=False))
    added = set(person.index[person.isin(later)])
    first = base.copy()
    first.drop(added)
    first.write(work / "run-1-sources")
    config = nightly_config(work / "nightly.yaml", _epcot(work / "visits"))
    wh = Warehouse(work / "warehouse")
    nightly = ["nightly", "--config", str(config), "--warehouse", str(wh.root), "--engine", "duckdb"]
    seconds["nightly 1"] = c360(*nightly, "--insurance", str(work / "run-1-sources"), "--run-id", "run-1")
    run1 = wh.run("run-1")
    ids1 = match_ids(run1.match.matched)
    plan = script(ids1, person, household, args, rng)
    strangers = S.merged_frame(work / "strangers").drop_duplicates("first_name")   # no two alike
    if len(strangers) < args.splits + args.commits:
        sys.exit("too few strangers for the script: fewer --splits or --commits")
    merged = S.merged_frame(work / "generated").set_index("id")
    committed = commit(wh.root, plan, strangers.iloc[args.splits:], merged, person)
    second, split_off = edit(base, plan, strangers, merged)
    second.write(work / "run-2-sources")
    seconds["nightly 2"] = c360(*nightly, "--insurance", str(work / "run-2-sources"), "--run-id", "run-2")
    run2 = wh.run("run-2")
    ids2 = match_ids(run2.match.matched)
    changes = pd.read_parquet(run2.match.id_changes, columns=list(COLUMNS))
    # the previous output of run 2 as the product sees it: run 1's ids and those the API gave the committed records
    prev = pd.concat([ids1, pd.Series({rid: mid for rid, (mid, _n, _w) in committed.items()}, dtype=int)])
    person = pd.concat([person, pd.Series({rid: who for rid, (_m, _n, who) in committed.items()})])
    issued = max(int(read_json_file(MatchOutput(run1.match.matched).report)["max_match_id"]), int(prev.max()))
    want = expected(plan, split_off, committed, ids2, added)
    m = measure(prev, ids2, person, want, added, changes, issued)
    survivors = {want[b][1][0] if want[b][0] == "merged" else want[a][1][0]: sorted([a, b])
                 for a, b in plan["merges"]}
    scripted_merged_from = {s: [x for x in ab if x != s] for s, ab in survivors.items()}
    graph = graph_merged_from(run2.root)
    current = wh.current()
    published = current is not None and current.root.resolve() == run2.root.resolve()
    api = api_answers(wh.root, plan, want) if published else {}
    report(args, m, seconds, ids1, ids2, committed, plan, graph, scripted_merged_from, api, run2)
    ok = (m["equal"] and m["missing"] == 0 and m["other_records"] == 0
          and m["other_person"] == 0 and m["new_issued_before"] == 0 and m["retired_in_run2"] == 0)
    return 0 if ok else 1


def _table(rows: list[dict]) -> str:
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    lines += ["| " + " | ".join(f"{r[c]:,}" if isinstance(r[c], int) and not isinstance(r[c], bool) else str(r[c])
                                for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def report(args, m, seconds, ids1, ids2, committed, plan, graph, scripted_merged_from, api, run2) -> None:
    print(f"## ID history: {args.customers:,} generated people (seed {args.seed}), {args.added} added, "
          f"{args.merges} merges, {args.splits} splits, {args.removed} removed, {args.commits} + {args.commits} "
          f"records committed\n")
    print(f"run 1: {len(ids1):,} records, {ids1.nunique():,} ids; run 2: {len(ids2):,} records, "
          f"{ids2.nunique():,} ids; id changes file: {m['file_rows']:,} rows\n")
    print(_table(m["rows"]) + "\n")
    new_people = [(mid, new) for mid, new, who in committed.values() if str(who).startswith("committed-")]
    known = [mid for mid, _new, who in committed.values() if not str(who).startswith("committed-")]
    print(_table([
        {"check": "the file equals the changes computed record by record from both outputs",
         "result": f"{m['equal']} ({m['file_rows']:,} rows vs {m['reference_rows']:,}"
                   f"{'; differ: ' + str(m['differences']) if m['differences'] else ''})"},
        {"check": "scripted changes missing or not as scripted", "result": m["missing"]},
        {"check": "changes no script calls for (the retrained model's, below)", "result": len(m["unscripted"])},
        {"check": "ids of run 1 (and committed) in run 2", "result": m["old"]},
        {"check": "... holding none of the records they held before", "result": m["other_records"]},
        {"check": "... holding none of the people they held before (truth)", "result": m["other_person"]},
        {"check": "new ids handed out before (in run 1, committed, or <= the highest issued)",
         "result": f"{m['new_issued_before']} of {m['new']} (smallest new {m['min_new']}, highest issued before "
                   f"{m['issued']})"},
        {"check": "retired ids in run 2", "result": m["retired_in_run2"]},
        {"check": "added people's records under an older id (the matcher joined them to someone)",
         "result": m["added_under_old_id"]},
        {"check": "API commits: new people given a new id / known people's records given their id",
         "result": f"{sum(n for _m, n in new_people)} of {len(new_people)} / "
                   f"{sum(mid == k for mid, k in zip(known, plan['known'], strict=True))} of {len(known)}"},
        {"check": "graph: survivors' merged_from as scripted",
         "result": f"{sum(graph.get(s) == v for s, v in scripted_merged_from.items())} of "
                   f"{len(scripted_merged_from)} ({len(graph)} match vertices with merged_from)"},
        {"check": "API over the published run 2", "result": ", ".join(f"{k}: {v}" for k, v in api.items())
                                                             or "run 2 not published"},
    ]) + "\n")
    if m["unscripted"]:
        print("Changes no script calls for (records the script did not touch; the truth's people):\n")
        print(_table(m["unscripted"]) + "\n")
    manifest = read_json_file(run2.manifest)
    gates = ", ".join(f"{n} {g.get('passed')}" for n, g in (manifest.get("gates") or {}).items())
    print(f"run 2: {manifest.get('status')}, gates {gates}; seconds: "
          + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--added", type=int, default=100, help="people only in run 2's sources")
    ap.add_argument("--merges", type=int, default=5, help="pairs of people made to look alike")
    ap.add_argument("--splits", type=int, default=5, help="people made to look like two")
    ap.add_argument("--removed", type=int, default=5, help="people whose records run 2's sources lack")
    ap.add_argument("--commits", type=int, default=3, help="records committed through the API between the runs: "
                                                           "this many new people's and known people's")
    ap.add_argument("--work", type=Path, default=None, help="keep the runs here (default: a temporary directory)")
    args = ap.parse_args()
    with owner_only():   # the generated sources hold (made-up) personal data
        if args.work is not None:
            args.work.mkdir(parents=True, exist_ok=True)
            return run(args, args.work)
        with tempfile.TemporaryDirectory(prefix="id-history-") as d:
            return run(args, Path(d))


if __name__ == "__main__":
    sys.exit(main())
