"""`c360 recsys train | recommend | evaluate` (thin: the work is in recsys' public functions)."""

from __future__ import annotations

import argparse
import json


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

    p = sub.add_parser("recommend", help="write recs.csv (USER_ID,ITEM_ID,RANK,SCORE) from a saved model")
    p.add_argument("--model", required=True)
    p.add_argument("--users", help="file with a USER_ID column (default: all users of the model)")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_recommend)

    p = sub.add_parser("evaluate", help="per-user holdout evaluation of every algorithm")
    _data_args(p)
    p.add_argument("--algos", default="popularity,item-knn,als,spark-als,fm,auto",
                   help="comma-separated algorithms to evaluate")
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


def _load(args):
    from .data import load_interactions

    return load_interactions(args.interactions, args.items, fmt=args.format, engine=args.aggregate)


def _params(args, algo: str) -> dict:
    params = parse_params(args.param)
    if algo == "als":
        params.setdefault("gpu", args.gpu)
    return params


def cmd_train(args) -> int:
    from .models import check_algo, train

    check_algo(args.algo)
    params = _params(args, args.algo)
    interactions, items = _load(args)
    model = train(args.algo, interactions, items, params=params, item_group_col=args.item_group_col,
                  seed=args.seed, show_progress=not args.no_progress)
    model.save(args.out)
    chosen = model.extra.get("auto", {}).get("chosen")
    print(f"trained {model.name}{f' (auto chose {chosen})' if chosen else ''} on {len(model.user_ids)} users x "
          f"{len(model.item_ids)} items in {model.train_seconds:.2f}s -> {args.out}")
    return 0


def cmd_recommend(args) -> int:
    from .models import load_model
    from .recs import read_users, write_recs

    model = load_model(args.model)
    users = read_users(args.users) if args.users else None
    write_recs(model, args.out, users, k=args.k)
    print(f"wrote {args.out}")
    return 0


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate, metrics_table, write_metrics
    from .models import check_algo

    algos = [check_algo(a.strip()) for a in args.algos.split(",") if a.strip()]
    interactions, items = _load(args)
    from .models import ALGORITHMS

    params = {a: {k: v for k, v in _params(args, a).items() if k in ALGORITHMS[a].defaults}
              for a in algos if a != "auto"}
    result = evaluate(algos, interactions, items, holdout=args.holdout, seed=args.seed, k=args.k,
                      item_group_col=args.item_group_col, params=params, show_progress=not args.no_progress)
    write_metrics(result, args.out)
    print(metrics_table(result).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0
