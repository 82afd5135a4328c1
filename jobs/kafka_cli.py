"""`c360 kafka start|stop|status`: a local Kafka broker (c360.kafka_server) for
realtime.log: kafka://127.0.0.1:PORT/TOPIC."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("kafka", help="local Apache Kafka 4.x broker in KRaft mode (jars from Maven Central)")
    sub = p.add_subparsers(dest="kafka_cmd", required=True)
    for name, helptext in (("start", "start the broker on loopback and wait until it answers"),
                           ("stop", "stop the broker started by `c360 kafka start` (its topics stay)"),
                           ("status", "say whether the broker runs")):
        sp = sub.add_parser(name, help=helptext)
        sp.add_argument("--port", type=int, default=9092)
        if name == "start":
            sp.add_argument("--wait", type=float, default=90.0, help="seconds to wait until it answers")
        sp.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from c360 import kafka_server as ks
    from c360.settings import load_settings

    cache = load_settings().cache  # jars and run directories (C360_CACHE)
    if args.kafka_cmd == "start":
        pid = ks.start(args.port, wait_s=args.wait, cache=cache)
        print(f"kafka {ks.kafka_version()} running on {ks.HOST}:{args.port} (pid {pid}); "
              f"realtime.log: kafka://{ks.HOST}:{args.port}/<topic>")
        return 0
    if args.kafka_cmd == "stop":
        print("stopped" if ks.stop(args.port, cache=cache) else f"no kafka broker of ours on port {args.port}")
        return 0
    st = ks.status(args.port, cache=cache)
    state = "running" if st["running"] else "not running"
    print(f"kafka broker {state} on port {st['port']}"
          + (f" (pid {st['pid']}, answering={st['answering']})" if st["running"] else ""))
    return 0 if st["running"] else 3
