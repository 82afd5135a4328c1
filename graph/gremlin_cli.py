"""`c360 gremlin start|stop|status`."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("gremlin", help="local TinkerPop Gremlin Server (jars from Maven Central); start needs "
                              "C360_GREMLIN_USERNAME and C360_GREMLIN_PASSWORD (its one account, no default)")
    sub = p.add_subparsers(dest="gremlin_cmd", required=True)
    for name, helptext in (("start", "start the server on loopback and wait until it answers"),
                           ("stop", "stop the server started by `c360 gremlin start`"),
                           ("status", "say whether the server runs")):
        sp = sub.add_parser(name, help=helptext)
        sp.add_argument("--port", type=int, default=8182)
        if name == "start":
            sp.add_argument("--persist", metavar="FILE", help="keep the graph in this GraphSON file across restarts")
            sp.add_argument("--wait", type=float, default=90.0, help="seconds to wait for a round trip")
        sp.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from c360.graph import gremlin_server as gs
    from c360.settings import load_settings

    settings = load_settings()
    cache = settings.cache  # jars and run directories (C360_CACHE)
    if args.gremlin_cmd == "start":  # the server's one account: C360_GREMLIN_USERNAME / C360_GREMLIN_PASSWORD
        username, password = gs.credentials(settings)
        pid = gs.start(args.port, persist=args.persist, wait_s=args.wait, cache=cache, username=username,
                       password=password)
        print(f"gremlin server {gs.tinkerpop_version()} running on ws://{gs.HOST}:{args.port}/gremlin (pid {pid})")
        return 0
    if args.gremlin_cmd == "stop":
        print("stopped" if gs.stop(args.port, cache=cache) else f"no gremlin server of ours on port {args.port}")
        return 0
    st = gs.status(args.port, cache=cache, username=settings.gremlin_username, password=settings.gremlin_password)
    state = "running" if st["running"] else "not running"
    print(f"gremlin server {state} on port {st['port']}" + (f" (pid {st['pid']}, answering={st['answering']})" if st["running"] else ""))
    return 0 if st["running"] else 3
