"""`c360 recsys train | recommend | evaluate` (thin: the work is in recsys' public functions)."""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
from pathlib import Path


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--interactions", help="Personalize interactions CSV/Parquet, or the sigir17 directory")
    p.add_argument("--items", help="items CSV/Parquet (ITEM_ID, NAME, PARK, THEME, ...)")
    p.add_argument("--format", default="personalize", help="personalize (default) or sigir17")
    p.add_argument("--aggregate", default="spark", help="photo aggregation engine: spark (Spark SQL) or pandas")
    p.add_argument("--item-group-col", default=None, help="items column for context-aware popularity, e.g. PARK")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gpu", default="auto", help="implicit ALS on CUDA: auto|on|off")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="algorithm parameter (repeatable), e.g. --param factors=32 --param similarity=cosine")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--session-gap", type=float, default=480.0, metavar="MINUTES",
                   help="without a SESSION_ID column, a trip ends after this many minutes without an event (480)")


def register(subparsers) -> None:
    parser = subparsers.add_parser("recsys", help="train, serve and evaluate attraction recommenders")
    sub = parser.add_subparsers(dest="recsys_command", required=True, metavar="SUBCOMMAND")

    p = sub.add_parser("train", help="train one algorithm (or auto) and save the model directory")
    _data_args(p)
    # no list of names here (importing the registry would load numpy/scipy for every `c360` command):
    # an unknown name is answered with the registered choices
    p.add_argument("--algo", required=True,
                   help="a registered algorithm (e.g. als, item-knn, ease) or auto; an unknown name lists them all")
    p.add_argument("--out", required=True, help="model directory to write")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("recommend", help="write recs.csv (USER_ID,ITEM_ID,RANK,SCORE) from a saved model, or "
                                         "SESSION_ID,ITEM_ID,RANK,SCORE for trips so far (--sessions)")
    p.add_argument("--model", required=True)
    who = p.add_mutually_exclusive_group()
    who.add_argument("--users", help="file with a USER_ID column (default: all users of the model)")
    who.add_argument("--sessions", help="trips so far: SESSION_ID, ITEM_ID, TIMESTAMP (optional USER_ID); the next "
                                        "attractions of each trip's park, never one already in the trip")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_recommend)

    p = sub.add_parser("evaluate", help="evaluate algorithms: per-user random holdout, or time-ordered on trips")
    _data_args(p)
    p.add_argument("--algos", default=None,
                   help="comma-separated algorithms to evaluate (default: popularity,item-knn,als,spark-als,fm,auto; "
                        "for a time-ordered protocol popularity,item-knn,als,auto,session)")
    p.add_argument("--protocol", default="random",
                   help="random (per-user holdout), next-trip (train on every trip but each user's last, rank each "
                        "next attraction of it) or next-item (only its last attraction)")
    p.add_argument("--holdout", type=float, default=0.2)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--out", required=True, help="metrics.json")
    p.set_defaults(func=cmd_evaluate)


def parse_params(pairs: list[str]) -> dict:
    """KEY=VALUE strings -> dict with JSON-typed values (numbers, booleans) where they parse."""
    from c360.errors import InputError

    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise InputError(f"--param: expected KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


@contextlib.contextmanager
def _load(args):
    """(interactions, items): with --aggregate spark, the Parquet parts Spark aggregated into a scratch directory
    (models read that file, Spark ALS and FM with Spark); with pandas, a frame."""
    from .data import ENGINES, aggregate_files, load_interactions
    from .interactions import InteractionsFile

    if args.aggregate not in ENGINES:
        from c360.errors import InputError

        raise InputError(f"--aggregate: unknown engine {args.aggregate!r} (choose from {', '.join(ENGINES)})")
    if args.aggregate == "pandas":
        yield load_interactions(args.interactions, args.items, fmt=args.format, engine="pandas")
        return
    with tempfile.TemporaryDirectory(prefix="c360-interactions-") as tmp:
        path, items = aggregate_files(args.interactions, args.items, Path(tmp) / "interactions.parquet",
                                      fmt=args.format)
        yield InteractionsFile(path), items


def _params(args, algo: str) -> dict:
    params = parse_params(args.param)
    if algo == "als":
        params.setdefault("gpu", args.gpu)
    return params


def _load_trips(args):
    from .trips import load_trips

    return load_trips(args.interactions, args.items, fmt=args.format, gap_minutes=args.session_gap)


def cmd_train(args) -> int:
    from .models import check_algo, train

    check_algo(args.algo)
    params = _params(args, args.algo)
    if args.algo == "session":   # learns from trips in time order, not from the aggregated user x item matrix
        data = _load_trips(args)
        model = train(args.algo, data.trips, data.items, params=params, item_group_col=args.item_group_col,
                      seed=args.seed, show_progress=not args.no_progress, walks=data.walks)
    else:
        with _load(args) as (interactions, items):
            model = train(args.algo, interactions, items, params=params, item_group_col=args.item_group_col,
                          seed=args.seed, show_progress=not args.no_progress)
    model.save(args.out)
    chosen = (model.extra.get("auto") or model.extra.get("session") or {}).get("chosen")
    print(f"trained {model.name}{f' (auto chose {chosen})' if chosen else ''} on {len(model.user_ids)} users x "
          f"{len(model.item_ids)} items in {model.train_seconds:.2f}s -> {args.out}")
    return 0


def cmd_recommend(args) -> int:
    from .models import load_model
    from .recs import read_users, write_recs, write_session_recs

    model = load_model(args.model)
    if args.sessions:
        write_session_recs(model, args.sessions, args.out, k=args.k)
    else:
        users = read_users(args.users) if args.users else None
        write_recs(model, args.out, users, k=args.k)
    print(f"wrote {args.out}")
    return 0


def cmd_evaluate(args) -> int:
    from . import evaluate as ev
    from .models import ALGORITHMS, check_algo
    from .trips import TIME_PROTOCOLS, check_protocol

    timed = check_protocol(args.protocol) in TIME_PROTOCOLS
    names = args.algos.split(",") if args.algos else (ev.SESSION_DEFAULT_ALGOS if timed else ev.DEFAULT_ALGOS)
    algos = [check_algo(a.strip()) for a in names if a.strip()]
    params = {a: {k: v for k, v in _params(args, a).items() if k in ALGORITHMS[a].defaults}
              for a in algos if a != "auto"}
    if timed:
        result = ev.evaluate_sessions(algos, _load_trips(args), protocol=args.protocol, k=args.k,
                                      item_group_col=args.item_group_col, seed=args.seed, params=params,
                                      show_progress=not args.no_progress)
    else:
        with _load(args) as (interactions, items), tempfile.TemporaryDirectory(prefix="c360-split-") as work:
            result = ev.evaluate(algos, interactions, items, holdout=args.holdout, seed=args.seed, k=args.k,
                                 item_group_col=args.item_group_col, params=params,
                                 show_progress=not args.no_progress,
                                 workdir=work if args.aggregate == "spark" else None)
    ev.write_metrics(result, args.out)
    print(ev.metrics_table(result).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0
