"""`c360 spark start|stop|status`: a Spark standalone master and worker on loopback (c360.spark_cluster)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("spark", help="a local Spark standalone cluster (master + worker from the installed "
                              "pyspark) for C360_SPARK_MASTER=spark://127.0.0.1:PORT")
    sub = p.add_subparsers(dest="spark_cmd", required=True)
    for name, helptext in (("start", "start a master and one worker on loopback; wait until the worker registered"),
                           ("stop", "stop the worker (and its executors) and the master of `c360 spark start`"),
                           ("status", "say whether the cluster runs, with its workers, cores and memory")):
        sp = sub.add_parser(name, help=helptext)
        sp.add_argument("--port", type=int, default=7077, help="the master's port")
        if name == "start":
            sp.add_argument("--cores", type=int, default=2, help="cores the worker offers to executors")
            sp.add_argument("--memory", default="2g", help="memory the worker offers to executors (e.g. 2g)")
            sp.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the worker")
        sp.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from c360 import spark_cluster as cluster
    from c360.errors import InputError

    if args.spark_cmd == "start":
        if args.cores < 1:
            raise InputError(f"--cores: must be at least 1 (found {args.cores})")
        st = cluster.start(args.port, cores=args.cores, memory=args.memory, wait_s=args.wait)
        print(f"spark master {st['url']} running with {st['workers']} worker ({st['cores']} cores, "
              f"{st['memory_mb']} MB for executors); web UI http://{cluster.HOST}:{st['webui_port']}; "
              f"logs in {st['run_dir']}")
        return 0
    if args.spark_cmd == "stop":
        print("stopped" if cluster.stop(args.port) else f"no spark cluster of ours on port {args.port}")
        return 0
    st = cluster.status(args.port)
    if not st["running"]:
        print(f"spark master not running on port {args.port}")
        return 3
    print(f"spark master {st['url']} running (pid {st['master_pid']}): {st['workers']} worker, {st['cores']} cores, "
          f"{st['memory_mb']} MB, {st['apps']} running application(s)")
    return 0
