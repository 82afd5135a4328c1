"""Recommendations that follow the person, time-ordered, on the shipped parks with the generator's park accounts.

    python benchmarks/identity.py [--customers 2000] [--seed 0] [--algos popularity item-knn als] [--k 10]

The generator gives every visitor of the shipped visits 1-3 app accounts (a later trip opens a new one with p = 0.4)
and writes the visits keyed by account. For every person (the generator's truth: used to split and to judge,
never to train or to match) the last trip is the test; every earlier trip of everyone trains. The same algorithm is
trained three ways, side by side:

- (a) per account: the interactions as keyed, each account its own user;
- (b) the match's identities: `c360 er match` (DuckDB, the nightly's preset and labels) over the insurance records
  and the accounts, the accounts it joined share their histories (`c360.recsys.identities`, weighted by link);
- (c) the true persons: the truth's accounts of one person share their histories at full weight.

Each person's last trip is answered for the account it was made on, among its park's attractions (its context),
never an item of that user's training row; relevance = the trip's attractions new to the person (under any
account). NDCG@10 over the persons with an earlier trip and a new attraction in the last one; split by whether the
trip's park is one the person visited before (else no history is about its attractions); for the persons whose
last trip opened a new account ("fresh account": a stranger to (a), a known person to (b)); and a wrong-merge test:
every test account that has another account with history is merged instead with a stranger's account (another
person of the same park), at the weight of a weak link and of a certain one, against a correct merge at those
weights. Prints markdown tables. Goals: (b) >= 1.08x (a) and >= 0.97x (c); accounts F1 >= 0.98; a fresh account of
a known person >= 1.5x an unknown one; a wrong merge costs at most half what a correct merge gains.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from c360.entity_resolution import sources as S
from c360.entity_resolution.evaluate import evaluate, evaluate_source
from c360.entity_resolution.generate import generate
from c360.entity_resolution.match import match
from c360.recsys import identities as I
from c360.recsys import sigir17
from c360.recsys.models import train


def _data(work: Path, customers: int, seed: int):
    """(visits keyed by account with their true person, items, the matched output)."""
    gen = work / "sources"
    generate(customers, seed=seed, out_dir=gen, visits=sigir17.DEFAULT_DIR)
    merged = work / "merged.parquet"
    S.merged_frame(gen).to_parquet(merged, index=False)
    t0 = time.perf_counter()
    result = match([merged], engine="duckdb", labels=[gen / "labels.csv"], out=work / "matched.parquet")
    er_seconds = time.perf_counter() - t0
    truth = pd.read_csv(gen / "truth.csv", dtype=str)
    visits = sigir17.load_visits(gen / "visits")
    visits = visits.merge(truth.rename(columns={"record_id": "USER_ID", "person_id": "PERSON"})[["USER_ID", "PERSON"]],
                          on="USER_ID")
    er = {"all": evaluate(work / "matched.parquet", gen / "truth.csv"),
          "accounts": evaluate_source(work / "matched.parquet", gen / "truth.csv", "park"),
          "threshold": result.threshold, "seconds": er_seconds}
    return visits, sigir17.load_items(gen / "visits"), work / "matched.parquet", er


def _split(visits: pd.DataFrame):
    """(train rows, test trips: PERSON, USER_ID, PARK, relevant, fresh, known_park): each person's last trip is the
    test; training keeps every row before the start of that person's test trip. `known_park`: the person has an
    earlier trip in the test trip's park (else no history of theirs is about its attractions)."""
    starts = visits.groupby(["PERSON", "SESSION_ID"], as_index=False).agg(START=("TIMESTAMP", "min"),
                                                                          USER_ID=("USER_ID", "first"),
                                                                          PARK=("PARK", "first"))
    last = starts.sort_values(["PERSON", "START", "SESSION_ID"]).groupby("PERSON").tail(1)
    cut = visits.merge(last[["PERSON", "START"]], on="PERSON")
    train_rows = cut[cut["TIMESTAMP"] < cut["START"]]
    test_rows = visits[visits["SESSION_ID"].isin(set(last["SESSION_ID"]))]
    history = train_rows.groupby("PERSON")["ITEM_ID"].agg(set)
    parks_of = train_rows.groupby("PERSON")["PARK"].agg(set)
    account_seen = set(train_rows["USER_ID"])
    tests = []
    for (person, _), g in test_rows.groupby(["PERSON", "SESSION_ID"]):
        seen = history.get(person, set())
        new = set(g["ITEM_ID"]) - seen
        if seen and new:   # a person with a history, and something new to them in the last trip
            user = g["USER_ID"].iloc[0]
            park = g["PARK"].iloc[0]
            tests.append({"PERSON": person, "USER_ID": user, "PARK": park, "relevant": new,
                          "fresh": user not in account_seen, "known_park": park in parks_of.get(person, set())})
    return train_rows, pd.DataFrame(tests)


def _aggregate(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.groupby(["USER_ID", "ITEM_ID"], as_index=False).agg(EVENT_VALUE=("ITEM_ID", "size"),
                                                                    TIMESTAMP=("TIMESTAMP", "min"))


def _ndcg(model, tests: pd.DataFrame, items: pd.DataFrame, k: int, in_park: bool = True) -> np.ndarray:
    """NDCG@k of each test trip: its account's scores (popularity for a user the model does not know) among its
    park's attractions (`in_park`; else among every attraction, as `GET /recommendations` answers without a trip),
    never an item of the account's training row."""
    park_of = dict(zip(items["ITEM_ID"], items["PARK"], strict=True))
    parks = np.array([park_of.get(i, "") for i in model.item_ids])
    out = np.zeros(len(tests))
    for n, t in enumerate(tests.itertuples()):
        row = model.user_index.get(t.USER_ID)
        if row is None:
            scores = model.popularity.astype(float).copy()
        else:
            scores = np.asarray(model.score_rows(np.array([row]))[0], dtype=float).copy()
            scores[model.matrix[row].indices] = -np.inf
        if in_park:
            scores[parks != t.PARK] = -np.inf
        top = np.argsort(-scores, kind="stable")[:k]
        top = top[np.isfinite(scores[top])]
        gains = np.array([1.0 if model.item_ids[i] in t.relevant else 0.0 for i in top])
        dcg = (gains / np.log2(np.arange(2, len(gains) + 2))).sum()
        ideal = (1.0 / np.log2(np.arange(2, min(len(t.relevant), k) + 2))).sum()
        out[n] = dcg / ideal
    return out


def _true_identities(train_rows: pd.DataFrame, tests: pd.DataFrame, weight_p: float | None = None) -> I.Identities:
    """The truth's persons as an identities table (weight 1, or that of a link of probability `weight_p`)."""
    persons = pd.concat([train_rows[["USER_ID", "PERSON"]], tests[["USER_ID", "PERSON"]]]).drop_duplicates("USER_ID")
    table = pd.DataFrame({"USER_ID": persons["USER_ID"], "PERSON_ID": persons["PERSON"].astype(str)})
    return _identities(table, weight_p)


def _identities(table: pd.DataFrame, weight_p: float | None) -> I.Identities:
    """Read back through the CSV reader: every link of probability `weight_p` over threshold 0.9 (None: certain)."""
    threshold = None
    if weight_p is not None:
        table, threshold = table.assign(LINK_PROBABILITY=weight_p), 0.9
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "identities.csv"
        table.to_csv(path, index=False)
        return I.read_identities(path, threshold=threshold)


def _wrong_identities(train_rows: pd.DataFrame, tests: pd.DataFrame, weight_p: float | None, seed: int):
    """Each test account that has another account with history merged with a stranger's account of the same park
    instead (and the correct merge, for the same accounts): (wrong, correct, the test rows concerned)."""
    r = np.random.default_rng(seed)
    owners = train_rows.drop_duplicates("USER_ID")[["USER_ID", "PERSON", "PARK"]]
    others = owners.merge(tests[["PERSON", "USER_ID"]].rename(columns={"USER_ID": "TEST_ID"}), on="PERSON")
    others = others[others["USER_ID"] != others["TEST_ID"]]
    concerned = tests[tests["USER_ID"].isin(set(others["TEST_ID"]))]
    wrong, right = [], []
    by_park = {p: g["USER_ID"].to_numpy() for p, g in owners.groupby("PARK")}
    person_of = dict(zip(owners["USER_ID"], owners["PERSON"], strict=True))
    for t in concerned.itertuples():
        pool = by_park[t.PARK]
        stranger = pool[r.integers(len(pool))]
        while person_of[stranger] == t.PERSON:
            stranger = pool[r.integers(len(pool))]
        wrong += [(t.USER_ID, f"w{t.USER_ID}"), (stranger, f"w{t.USER_ID}")]
        right += [(u, f"r{t.USER_ID}") for u in [t.USER_ID, *others.loc[others["TEST_ID"] == t.USER_ID, "USER_ID"]]]

    def table(pairs):
        df = pd.DataFrame(pairs, columns=["USER_ID", "PERSON_ID"]).drop_duplicates("USER_ID")
        return _identities(df, weight_p)

    return table(wrong), table(right), concerned


def _fit(algo: str, interactions: pd.DataFrame, items: pd.DataFrame, seed: int):
    return train(algo, interactions, items, item_group_col="PARK", seed=seed, show_progress=False)


def run(customers: int, seed: int, algos: list[str], k: int) -> None:
    with tempfile.TemporaryDirectory(prefix="c360-identity-") as tmp:
        visits, items, matched, er = _data(Path(tmp), customers, seed)
        train_rows, tests = _split(visits)
        plain = _aggregate(train_rows)
        users = sorted(set(visits["USER_ID"]))
        matched_ids = I.read_identities(matched, user_ids=users)
        shared = {"a": plain, "b": I.share_histories(plain, matched_ids),
                  "c": I.share_histories(plain, _true_identities(train_rows, tests))}
        acc = er["accounts"]
        print(f"\n## Accounts ({len(users)} accounts of {visits['PERSON'].nunique()} visitors; {len(tests)} test trips, "
              f"{int(tests['fresh'].sum())} on a fresh account)\n")
        print("| ER (DuckDB, labels) | F1 | precision | recall | persons with a wrong merge | threshold |")
        print("| --- | --- | --- | --- | --- | --- |")
        print(f"| pairs with an account | {acc['f1']:.4f} | {acc['precision']:.4f} | {acc['recall']:.4f} | "
              f"{acc['wrong_merge_share']:.2%} | {er['threshold']} |")
        print(f"| all pairs | {er['all']['f1']:.4f} | {er['all']['precision']:.4f} | {er['all']['recall']:.4f} | | |")
        print(f"\n## NDCG@{k} of each person's last trip's new attractions\n")
        print("| algorithm | (a) per account | (b) match | (c) true persons | b/a | b/c | fresh: a | fresh: b | "
              "fresh: c | fresh b/a |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        fresh, known_park = tests["fresh"].to_numpy(), tests["known_park"].to_numpy()
        free, split = {}, {}
        for algo in algos:
            nd = {w: _ndcg(_fit(algo, shared[w], items, seed), tests, items, k) for w in "abc"}
            split[algo] = {(name, w): nd[w][m].mean() for name, m in (("known", known_park), ("new", ~known_park),
                                                                       ("fresh known", fresh & known_park))
                           for w in "abc"}
            m = {w: v.mean() for w, v in nd.items()}
            fa, fb, fc = (nd[w][fresh].mean() for w in "abc")
            free[algo] = {w: _ndcg(_fit(algo, shared[w], items, seed), tests[fresh], items, k, in_park=False).mean()
                          for w in "ab"}
            print(f"| {algo} | {m['a']:.4f} | {m['b']:.4f} | {m['c']:.4f} | {m['b'] / m['a']:.3f}x | "
                  f"{m['b'] / m['c']:.3f}x | {fa:.4f} | {fb:.4f} | {fc:.4f} | {fb / fa if fa else float('inf'):.2f}x |")
        print(f"\n## By the trip's park: one the person visited before ({int(known_park.sum())} trips, "
              f"{int((fresh & known_park).sum())} on a fresh account) or a park new to them "
              f"({int((~known_park).sum())}), where no history of theirs is about its attractions\n")
        print("| algorithm | known park: a | b | c | b/a | c/a | new park: a | b | b/a | fresh, known park: a | b | "
              "c | b/a |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for algo, v in split.items():
            print(f"| {algo} | {v['known', 'a']:.4f} | {v['known', 'b']:.4f} | {v['known', 'c']:.4f} | "
                  f"{v['known', 'b'] / v['known', 'a']:.3f}x | {v['known', 'c'] / v['known', 'a']:.3f}x | "
                  f"{v['new', 'a']:.4f} | {v['new', 'b']:.4f} | {v['new', 'b'] / v['new', 'a']:.3f}x | "
                  f"{v['fresh known', 'a']:.4f} | {v['fresh known', 'b']:.4f} | {v['fresh known', 'c']:.4f} | "
                  f"{v['fresh known', 'b'] / v['fresh known', 'a']:.2f}x |")
        print("\n## Fresh accounts without a trip context (the API's answer: an unknown account gets the context-free "
              "cold start, a known person's account its person's answer)\n")
        print("| algorithm | unknown account (a) | known person (b) | b/a |")
        print("| --- | --- | --- | --- |")
        for algo, v in free.items():
            print(f"| {algo} | {v['a']:.4f} | {v['b']:.4f} | {v['b'] / v['a'] if v['a'] else float('inf'):.2f}x |")
        print(f"\n## A wrong merge against a correct one (accounts with another account that has history; weights "
              f"min(f(p)) with floor {I.W_MIN}, margin {I.MARGIN} nats over threshold 0.9)\n")
        print("| algorithm | link | weight | n | alone | correct merge | wrong merge | gain | cost | cost/gain |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for algo in algos:
            for label, p in (("weak (p = 0.92)", 0.92), ("strong (p = 0.999)", 0.999), ("certain", None)):
                wrong, right, concerned = _wrong_identities(train_rows, tests, p, seed)
                weight = float(I.link_weight(np.array([p]), 0.9)[0]) if p is not None else 1.0
                alone = _ndcg(_fit(algo, plain, items, seed), concerned, items, k).mean()
                good = _ndcg(_fit(algo, I.share_histories(plain, right), items, seed), concerned, items, k).mean()
                bad = _ndcg(_fit(algo, I.share_histories(plain, wrong), items, seed), concerned, items, k).mean()
                gain, cost = good - alone, alone - bad
                print(f"| {algo} | {label} | {weight:.2f} | {len(concerned)} | {alone:.4f} | {good:.4f} | {bad:.4f} | "
                      f"{gain:+.4f} | {cost:+.4f} | {cost / gain if gain > 0 else float('nan'):.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--algos", nargs="+", default=["popularity", "item-knn", "als"])
    ap.add_argument("--k", type=int, default=10)
    a = ap.parse_args()
    t0 = time.perf_counter()
    run(a.customers, a.seed, a.algos, a.k)
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
