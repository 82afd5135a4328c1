"""`c360 er generate|merge|match|evaluate|explain|labels|review` — thin wrappers over the public functions."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from c360.inputs import require_args, require_files


def _generate(a) -> int:
    from c360.entity_resolution.generate import generate
    require_args(a, "--visits", dirs={"--visits"})
    visits = None
    if a.accounts:
        from c360.data import SIGIR17_LAYOUT, SIGIR17_REQUIRED_FILES, sigir17_dir

        require_files("--visits", a.visits, SIGIR17_REQUIRED_FILES, SIGIR17_LAYOUT)   # before anything is written
        visits = a.visits or sigir17_dir()
    print(json.dumps(generate(a.customers, a.seed, a.out, visits=visits, visitors=a.visitors), default=str))
    return 0


def _merge(a) -> int:
    require_args(a, "--sources", dirs={"--sources"})   # before Spark starts: the folder and the tables it must hold
    from c360.entity_resolution.merge import merge, merge_files

    require_files("--sources", a.sources, merge_files())
    print(json.dumps(merge(a.sources, a.out)))
    return 0


def _match(a) -> int:
    require_args(a, "--input", "--config", "--labels", "--previous")   # before Spark or Splink starts
    from c360.entity_resolution.match import match
    res = match(a.input, config=a.config, engine=a.engine, labels=a.labels, out=a.out, threshold=a.threshold,
                previous=a.previous)
    print(json.dumps(asdict(res)))
    return 0


def _evaluate(a) -> int:
    require_args(a, "--matched", "--truth")
    from c360.entity_resolution.evaluate import evaluate
    from c360.io import write_json_file
    m = evaluate(a.matched, a.truth)
    if a.out:
        write_json_file(a.out, m)
    print(json.dumps(m))
    return 0


def _labels(a) -> int:
    require_args(a, "--matched", "--labels")
    from c360.entity_resolution.labels import evaluate_labels
    print(json.dumps(evaluate_labels(a.matched, a.labels, a.out)))
    return 0


def _review(a) -> int:
    require_args(a, "--matched", "--labels")
    from c360.entity_resolution.review import review
    print(json.dumps(review(a.matched, a.labels, n=a.n, out=a.out, seed=a.seed, random=a.random)))
    return 0


def _explain(a) -> int:
    require_args(a, "--matched")
    from c360.entity_resolution.explain import explain_match, explain_pair
    from c360.io import atomic_path
    html = explain_pair(a.matched, *a.pair) if a.pair else explain_match(a.matched, a.match_id)
    with atomic_path(a.out) as tmp:
        Path(tmp).write_text(html)
    print(a.out)
    return 0


def register(subparsers) -> None:
    er = subparsers.add_parser("er", help="entity resolution: generate, merge, match, evaluate, labels, review, explain")
    sub = er.add_subparsers(dest="er_cmd", required=True)
    p = sub.add_parser("generate", help="generate the five insurance source tables + truth.csv + labels.csv")
    p.add_argument("--customers", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--accounts", action="store_true",
                   help="also park accounts for the visitors of the visits (park_accounts.csv) and the visits keyed by "
                        "account (visits/, sigir17 layout), their rows in truth.csv")
    p.add_argument("--visits", help="sigir17 directory whose visitors get accounts (default: the shipped data)")
    p.add_argument("--visitors", type=int, help="only this many visitors, drawn at random (default: all)")
    p.set_defaults(func=_generate)
    p = sub.add_parser("merge", help="Spark merge job → merged_auto_property Parquet")
    p.add_argument("--sources", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=_merge)
    _register_match(sub)
    _register_readers(sub)


def _register_match(sub) -> None:
    p = sub.add_parser("match", help="Splink matching → every row + match_id (config: roles, columns, formats, "
                                     "blocking, households, threshold)")
    p.add_argument("--input", action="append", required=True)
    p.add_argument("--config")
    p.add_argument("--engine", choices=["spark", "duckdb"], default="spark")
    p.add_argument("--labels", action="append")
    p.add_argument("--threshold", type=float, default=None,
                   help="match probability that links two records (default: the config's; auto = best F1 on the "
                        "labels, else the model's expected F1, recalibrated at the match-weight valley)")
    p.add_argument("--previous")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_match)


def _register_readers(sub) -> None:
    """The commands that read a match output: evaluate, labels, review, explain."""
    p = sub.add_parser("evaluate", help="pairwise and cluster (B-cubed) precision/recall/F1 against truth")
    p.add_argument("--matched", required=True)
    p.add_argument("--truth", required=True)
    p.add_argument("--out")
    p.set_defaults(func=_evaluate)
    p = sub.add_parser("labels", help="precision/recall/F1 over thresholds on a FindMatches labeling file")
    p.add_argument("--matched", required=True)
    p.add_argument("--labels", required=True)
    p.add_argument("--out", help="HTML chart")
    p.set_defaults(func=_labels)
    p = sub.add_parser("review", help="labeling sets whose answers help the match most (uncertain pairs, weak "
                                      "bridges, spread over blocking rules and levels), drawn with known "
                                      "inclusion probabilities; fill in the labels, give the file to er match --labels")
    p.add_argument("--matched", required=True)
    p.add_argument("--labels", action="append", help="answered labeling files: their pairs are never asked again")
    p.add_argument("--n", type=int, default=50, help="labeling sets to draw (default 50)")
    p.add_argument("--out", required=True, help="the labeling file to write (CSV)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--random", action="store_true", help="a simple random sample of the scored pairs instead")
    p.set_defaults(func=_review)
    p = sub.add_parser("explain", help="waterfall chart (HTML) for a pair or a match_id")
    p.add_argument("--matched", required=True)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--pair", nargs=2, metavar="ID")
    g.add_argument("--match-id", type=int)
    p.add_argument("--out", required=True)
    p.set_defaults(func=_explain)
