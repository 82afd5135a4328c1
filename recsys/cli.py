"""`c360 recsys train | recommend | evaluate` (thin: the work is in recsys' public functions)."""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
from pathlib import Path


def _data_args(p: argparse.ArgumentParser) -> None:
    from c360.data import sigir17_dir

    p.add_argument("--interactions", metavar="F",
                   help="Personalize interactions CSV/Parquet (needed with --format personalize), or a sigir17 "
                        f"directory (with --format sigir17; default: the shipped data, {sigir17_dir()})")
    p.add_argument("--items", help="items CSV/Parquet (ITEM_ID, NAME, PARK, THEME, ...)")
    p.add_argument("--format", default="personalize",
                   help="personalize (default) or sigir17 (`--format sigir17` alone runs on the shipped data)")
    p.add_argument("--aggregate", default="spark", help="photo aggregation engine: spark (Spark SQL) or pandas")
    p.add_argument("--item-group-col", default=None, help="items column for context-aware popularity, e.g. PARK")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gpu", default="auto", help="implicit ALS on CUDA: auto|on|off")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="algorithm parameter (repeatable), e.g. --param factors=32 --param similarity=cosine")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars (drawn only when stderr is a terminal)")
    p.add_argument("--session-gap", type=float, default=480.0, metavar="MINUTES",
                   help="without a SESSION_ID column, a trip ends after this many minutes without an event (480)")


def register(subparsers) -> None:
    parser = subparsers.add_parser("recsys", help="train, recommend and evaluate attraction recommenders")
    sub = parser.add_subparsers(dest="recsys_command", required=True, metavar="SUBCOMMAND")

    p = sub.add_parser("train", help="train one algorithm (or auto) and save the model directory")
    _data_args(p)
    # no list of names here (importing the registry would load numpy/scipy for every `c360` command):
    # an unknown name is answered with the registered choices
    p.add_argument("--algo", required=True,
                   help="a registered algorithm (e.g. als, item-knn, ease) or auto; an unknown name lists them all")
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--identities", metavar="FILE",
                   help="accounts of one person: an `er match` output (its id column and match_id; the scored pairs "
                        "beside it weigh each link) or a CSV USER_ID,PERSON_ID[,LINK_PROBABILITY]; each account "
                        "trains on its person's history (not with --algo session), kept in the model directory")
    p.add_argument("--accounts", metavar="FILE",
                   help="with an `er match` output as --identities: a file with a USER_ID column, the ids of its "
                        "records that are accounts (default: the interactions' users)")
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


def _check_inputs(args, *more: str) -> None:
    """The data's paths exist (and --interactions is given where the format needs it) before Spark starts."""
    from c360.data import sigir17_dir
    from c360.errors import InputError
    from c360.inputs import require_args

    if args.format == "personalize" and not args.interactions:
        raise InputError(f"--interactions: required with --format personalize (the default); --format sigir17 "
                         f"without --interactions runs on the shipped data ({sigir17_dir()})")
    require_args(args, "--interactions", "--items", *more)


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


def _shared(args, interactions, scratch: str):
    """(the interactions with every account's person's history shared, the identities read from --identities);
    a Parquet file stays a Parquet file (Spark models read it with Spark)."""
    from .identities import read_identities, share_histories
    from .interactions import InteractionsFile
    from .recs import read_users

    frame = interactions.to_frame() if isinstance(interactions, InteractionsFile) else interactions
    accounts = set(frame["USER_ID"].astype(str)) | set(read_users(args.accounts) if args.accounts else ())
    identities = read_identities(args.identities, user_ids=accounts)
    shared = share_histories(frame, identities)
    if isinstance(interactions, InteractionsFile):
        path = Path(scratch) / "shared.parquet"
        shared.to_parquet(path, index=False)
        shared = InteractionsFile(path)
    return shared, identities


def cmd_train(args) -> int:
    _check_inputs(args, "--identities", "--accounts")   # before the models' libraries load (seconds)
    from c360.errors import InputError
    from c360.io import atomic_path

    from .identities import IDENTITIES_FILE, write_identities
    from .models import check_algo, train

    check_algo(args.algo)
    params = _params(args, args.algo)
    if args.accounts and not args.identities:
        raise InputError("--accounts: only with --identities (an `er match` output)")
    identities = None
    if args.algo == "session":   # learns from trips in time order, not from the aggregated user x item matrix
        if args.identities:
            raise InputError("--identities: not for --algo session (it learns from each account's trips in time "
                             "order; share histories with a user model: als, item-knn, ease, auto, ...)")
        data = _load_trips(args)
        model = train(args.algo, data.trips, data.items, params=params, item_group_col=args.item_group_col,
                      seed=args.seed, show_progress=not args.no_progress, walks=data.walks)
    else:
        with _load(args) as (interactions, items), tempfile.TemporaryDirectory(prefix="c360-shared-") as scratch:
            if args.identities:
                interactions, identities = _shared(args, interactions, scratch)
            model = train(args.algo, interactions, items, params=params, item_group_col=args.item_group_col,
                          seed=args.seed, show_progress=not args.no_progress)
    if identities is None:
        model.save(args.out)
    else:   # the identities inside the model directory from the start (one rename puts both in place)
        with atomic_path(Path(args.out)) as tmp:
            model.save(tmp)
            write_identities(identities, tmp / IDENTITIES_FILE)
    chosen = (model.extra.get("auto") or model.extra.get("session") or {}).get("chosen")
    print(f"trained {model.name}{f' (auto chose {chosen})' if chosen else ''} on {len(model.user_ids)} users x "
          f"{len(model.item_ids)} items in {model.train_seconds:.2f}s -> {args.out}")
    if identities is not None:
        n = identities.summary()
        print(f"identities: {n['shared_accounts']} of {n['accounts']} accounts share their person's history "
              f"({n['persons']} person(s) with several accounts; kept in {IDENTITIES_FILE})")
    return 0


def cmd_recommend(args) -> int:
    from c360.inputs import require_args

    require_args(args, "--model", "--users", "--sessions")
    from .identities import model_identities
    from .models import load_model
    from .recs import read_users, write_recs, write_session_recs

    model = load_model(args.model)
    if args.sessions:
        write_session_recs(model, args.sessions, args.out, k=args.k)
    else:
        users = read_users(args.users) if args.users else None
        write_recs(model, args.out, users, k=args.k, identities=model_identities(args.model))
    print(f"wrote {args.out}")
    return 0


def cmd_evaluate(args) -> int:
    _check_inputs(args)   # before the models' libraries load (seconds)
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
    print(ev.format_metrics(result))
    return 0
