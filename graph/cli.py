"""`c360 graph export|load`."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("graph", help="customer-360 property graph: Neptune CSV export, Gremlin/networkx load")
    sub = p.add_subparsers(dest="graph_cmd", required=True)
    ex = sub.add_parser("export", help="compute the graph (Spark, or locally) and write Neptune bulk-load CSV "
                        "parts per label (vertex-<label>-NNNNN.csv, edge-<label>-NNNNN.csv) into one folder")
    ex.add_argument("--out", required=True, metavar="DIR")
    ex.add_argument("--matched", metavar="F", help="matched.parquet: merged insurance rows + match_id (and its "
                    ".id_changes.parquet beside it, when there: the match vertices' merged_from and "
                    "split_from)")
    ex.add_argument("--sources", metavar="DIR", help="the five insurance source tables (policies, vehicles, addresses)")
    vis = ex.add_mutually_exclusive_group()
    vis.add_argument("--visits", metavar="DIR", help="sigir17 data directory (photos per user and attraction)")
    vis.add_argument("--interactions", metavar="F", help="Personalize interactions USER_ID,ITEM_ID,TIMESTAMP[,EVENT_VALUE]")
    ex.add_argument("--items", metavar="F", help="attractions ITEM_ID,NAME,PARK,THEME (default: sigir17 POI lists)")
    ex.add_argument("--recs", metavar="F", help="recs.csv USER_ID,ITEM_ID,RANK,SCORE")
    ex.add_argument("--model", default="model", help="name of the model that made --recs")
    ex.add_argument("--trips", metavar="F", help="visit rows USER_ID,ITEM_ID,SESSION_ID,TIMESTAMP[,PARK] (the run's "
                    "recsys/trips.parquet): trips and last visit per visited edge, trips per park per visitor")
    ex.add_argument("--engine", default="spark", choices=["spark", "local"],
                    help="spark (default, the nightly's) or local: computed in this process, for inputs that fit in "
                    "memory (the same files)")
    ex.add_argument("--spreadsheet-safe", action="store_true",
                    help="for people who open the files in a spreadsheet: a string value that would start a formula "
                    "(= + - @ ...) gets a leading ' (our loader strips it; Neptune's bulk loader would keep it)")
    ex.set_defaults(func=_export)
    ld = sub.add_parser("load", help="upsert the CSVs into Gremlin (TinkerPop, Neptune) or the embedded store")
    ld.add_argument("--csv", required=True, metavar="DIR", help="export folder (vertex-*.csv and edge-*.csv parts; "
                    "streamed file by file, vertices first)")
    ld.add_argument("--target", required=True, help="gremlin://HOST:PORT | wss://NEPTUNE:8182 | networkx:PATH "
                    "(any scheme in graph.backends)")
    ld.add_argument("--drop", action="store_true", help="remove everything first (full reload)")
    ld.add_argument("--batch-size", type=int, default=1000, help="elements per traversal (Gremlin)")
    ld.add_argument("--workers", type=int, default=4, help="vertex batches in flight at once (Gremlin); edges go one batch at a time, this many encoded ahead")
    ld.set_defaults(func=_load)


def _export(args: argparse.Namespace) -> int:
    from c360.inputs import require_args

    require_args(args, "--matched", "--sources", "--visits", "--interactions", "--items", "--recs", "--trips",
                 dirs={"--sources", "--visits"})   # before Spark starts
    from c360.graph.export import export_graph
    from c360.graph.neptune_csv import EXACT, SPREADSHEET
    from c360.settings import load_settings

    written = export_graph(args.out, settings=load_settings(), matched=args.matched, sources=args.sources,
                           visits=args.visits, interactions=args.interactions, items=args.items, recs=args.recs,
                           model=args.model, trips=args.trips, engine=args.engine,
                           values=SPREADSHEET if args.spreadsheet_safe else EXACT)
    print(json.dumps({"dir": str(written.dir), "files": len(written.files), **written.counts}, sort_keys=True))
    return 0


def _load(args: argparse.Namespace) -> int:
    from c360.inputs import require_args

    require_args(args, "--csv", dirs={"--csv"})
    from c360.graph.loader import load_graph_files
    from c360.settings import load_settings

    counts = load_graph_files(args.csv, args.target, drop=args.drop, batch_size=args.batch_size,
                              workers=args.workers, settings=load_settings())
    print(json.dumps(counts, sort_keys=True))
    return 0
