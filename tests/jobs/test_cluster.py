"""A Spark standalone cluster from the installed pyspark: the nightly run on it publishes what `local[*]` publishes,
README's cluster commands work as written, and nothing of the cluster outlives its stop."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from c360 import spark_cluster
from c360.errors import C360Error
from c360.io import read_table
from c360.layout import Warehouse
from tests.conftest import REPO, free_port, run_cli
from tests.jobs.conftest import write_config

# deterministic recommenders (popularity: served and baseline; item-kNN) beside Spark MLlib's ALS, which trains on
# the executors; the session model is left out (driver-side only, and the slowest part of a small run)
ALGORITHMS = ("popularity", "item-knn", "spark-als")


@pytest.fixture
def small_epcot(tmp_path) -> Path:
    """A sigir17 directory with a quarter of Epcot's visitors (every one of their photos) and its POI list."""
    from c360.recsys.sigir17 import DEFAULT_DIR

    root = tmp_path / "sigir17-small"
    visits, pois = "userVisits-sigir17/userVisits-epcot-allPOI.csv", "poiList-sigir17/POI-epcot.csv"
    for rel in (visits, pois):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / pois).write_bytes((DEFAULT_DIR / pois).read_bytes())
    header, *rows = (DEFAULT_DIR / visits).read_text().splitlines()
    users = sorted({row.split(";")[1] for row in rows})
    kept = set(users[::4])
    (root / visits).write_text("\n".join([header, *(r for r in rows if r.split(";")[1] in kept)]) + "\n")
    return root


def _nightly(config: Path, warehouse: Path, master: str) -> Path:
    run_cli("nightly", "--config", str(config), "--warehouse", str(warehouse), "--run-id", "r1",
            env={"C360_SPARK_MASTER": master, "C360_GRAPH": "networkx"}, timeout=1200)
    current = Warehouse(warehouse).current()
    assert current is not None, f"{warehouse}: nothing published"
    return current.root


def _match_ids(run: Path) -> dict[str, int]:
    df = read_table(run / "er" / "matched.parquet")[["id", "match_id"]]
    return dict(zip(df["id"].astype(str), df["match_id"].astype("int64"), strict=True))


def _clusters(match_ids: dict[str, int]) -> set[frozenset[str]]:
    """The partition of the records, whatever the ids of its parts."""
    members: dict[int, set[str]] = {}
    for record, match_id in match_ids.items():
        members.setdefault(match_id, set()).add(record)
    return {frozenset(m) for m in members.values()}


def _recs(run: Path) -> pd.DataFrame:
    recs = read_table(run / "recsys" / "recs.csv", dtype={"USER_ID": str, "ITEM_ID": str})
    return recs.sort_values(["USER_ID", "RANK"]).reset_index(drop=True)


def _graph_counts(run: Path) -> Counter:
    """(vertex|edge, label) -> rows over every Neptune CSV under graph/ (files or directories of part files)."""
    counts: Counter = Counter()
    for path in sorted(p for p in (run / "graph").rglob("*") if p.name.endswith((".csv", ".csv.gz"))):
        df = pd.read_csv(path, usecols=lambda c: c in ("~label", "~from"), dtype=str)
        if "~label" in df:
            kind = "edge" if "~from" in df else "vertex"
            counts.update((kind, label) for label in df["~label"])
    return counts


def _gate_values(run: Path) -> dict:
    gates = json.loads((run / "manifest.json").read_text())["gates"]
    return {name: (gate["passed"], gate.get("value")) for name, gate in gates.items()}


def _close(a, b, rel: float) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], rel) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y, rel) for x, y in zip(a, b, strict=True))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)
    return a == b


@pytest.mark.slow
@pytest.mark.timeout(1800)  # two nightlies at once: over the suite's 900 s per test on a busy 2-core machine
def test_nightly_on_a_standalone_cluster_publishes_what_local_does(spark_cluster, tmp_path, small_epcot,
                                                                   insurance):
    """The same small nightly (Spark ALS, item-kNN, popularity served) wholly on Spark against
    spark://127.0.0.1:PORT, where every Spark task (the match's Splink SQL and the graph export included) runs in
    one of the worker's two executor JVMs, and on local[*] with the embedded match and graph export (DuckDB,
    in-process): the same clusters and match ids, the same served recommendations, the same graph counts by label,
    the same gate values, and the recommenders' holdout metrics within 5% (Spark ALS; the others equal). The local
    run's match and export are the embedded engines on purpose: Splink on Spark and on DuckDB give the same clusters
    and ids here (as in tests/entity_resolution/test_hadoop_paths.py; the two exports: tests/graph/test_export.py),
    and a second Splink-on-Spark nightly took two thirds of this test's time on 2 cores."""
    on_spark = write_config(tmp_path / "spark.yaml", small_epcot, insurance, engine="spark", algorithms=ALGORITHMS,
                            serve="popularity")
    embedded = write_config(tmp_path / "embedded.yaml", small_epcot, insurance, engine="duckdb",
                            algorithms=ALGORITHMS, serve="popularity")
    # both at once: on small data a nightly's Spark jobs wait on scheduling far more than they compute, so the two
    # processes share the machine's cores without changing what either computes
    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(_nightly, cfg, tmp_path / f"wh-{name}", master)
                for name, cfg, master in (("cluster", on_spark, spark_cluster["url"]), ("local", embedded, "local[*]"))]
        on_cluster, local = (run.result() for run in runs)

    # it ran there: an application of the nightly finished on the master, with executors the worker forked
    state = spark_cluster_state(spark_cluster)
    apps = [app for app in state["completedapps"] if app["name"] == "c360-nightly-r1"]
    assert apps and apps[0]["cores"] >= 1, state["completedapps"]
    executors = list((Path(spark_cluster["run_dir"]) / "work" / apps[0]["id"]).glob("*/stderr"))
    assert len(executors) >= 2, "the nightly did not get its two executor JVMs from the worker"

    # ER: the same clusters, and the same match id for every record (fresh warehouses: the ids depend on the
    # clusters and the records only)
    engines = [json.loads((run / "manifest.json").read_text())["steps"]["match"]["metrics"]["engine"]
               for run in (on_cluster, local)]
    assert engines == ["spark", "duckdb"], engines
    ids_cluster, ids_local = _match_ids(on_cluster), _match_ids(local)
    assert len(ids_cluster) > 0 and _clusters(ids_cluster) == _clusters(ids_local)
    assert ids_cluster == ids_local
    # the served recommendations (popularity: deterministic): same items, ranks and scores for every user
    a, b = _recs(on_cluster), _recs(local)
    pd.testing.assert_frame_equal(a[["USER_ID", "ITEM_ID", "RANK"]], b[["USER_ID", "ITEM_ID", "RANK"]])
    assert ((a["SCORE"] - b["SCORE"]).abs() <= 1e-6 * b["SCORE"].abs().clip(lower=1)).all()
    # the graph: the same vertices and edges by label
    assert _graph_counts(on_cluster) and _graph_counts(on_cluster) == _graph_counts(local)
    # gates: all passed on both, with the same values (ER F1, served vs baseline ndcg, graph counts)
    gates_cluster, gates_local = _gate_values(on_cluster), _gate_values(local)
    assert all(passed for passed, _ in gates_cluster.values()) and gates_cluster.keys() == gates_local.keys()
    assert _close(gates_cluster, gates_local, rel=1e-3), (gates_cluster, gates_local)
    metrics = [json.loads((run / "manifest.json").read_text())["steps"]["recsys_evaluate"]["metrics"]
               for run in (on_cluster, local)]
    # Spark ALS is seeded and gets the same partitions on both, but sums floats in another order across processes
    assert _close(metrics[0], metrics[1], rel=0.05), metrics
    deterministic = [{a: v for a, v in m["ndcg@10"].items() if a != "spark-als"} for m in metrics]
    assert deterministic[0] == deterministic[1]


def spark_cluster_state(cluster: dict) -> dict:
    state = spark_cluster.master_state(cluster["webui_port"])
    assert state is not None, "the master's web UI does not answer"
    return state


def _readme_cluster_block() -> str:
    """The first bash block of README's "Running on a Spark cluster" section."""
    text = (REPO / "README.md").read_text()
    section = re.search(r"^## Running on a Spark cluster\n(.*?)(?=^## )", text, re.S | re.M)
    assert section, "README has no 'Running on a Spark cluster' section"
    block = re.search(r"```bash\n(.*?)```", section.group(1), re.S)
    assert block, "the section has no bash block"
    return block.group(1)


def _processes_mentioning(*needles: str) -> list[str]:
    """Command lines (and working directories) of live processes that contain any of `needles`."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if any(n in cmdline or n in cwd for n in needles) and int(proc.name) != os.getpid():
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


@pytest.mark.slow
def test_readme_cluster_commands_work_as_written(tmp_path):
    """The README block, run by bash with this virtualenv first on PATH, from a folder laid out like the checkout
    (its jobs/), on a free port instead of 7077: a master and a worker start, a job through c360.spark.get_spark
    and a spark-submit of jobs/submit.py run on them, they stop, and no process of theirs (daemons, executors) is
    left."""
    block = _readme_cluster_block()
    assert "c360 spark start" in block and "get_spark" in block and "c360 spark stop" in block
    port, cache = free_port(), tmp_path / "cache"
    workdir = tmp_path / "checkout"
    workdir.mkdir()
    (workdir / "jobs").symlink_to(REPO / "jobs")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "C360_CACHE": str(cache)}
    env.pop("C360_SPARK_MASTER", None)
    script = block.replace("7077", str(port))
    try:
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True,
                              cwd=workdir, env=env, timeout=600)
        assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-4000:]}"
    finally:
        spark_cluster.stop(port, cache=cache)  # whatever the block left running
    out = proc.stdout
    assert f"spark master spark://127.0.0.1:{port} running with 1 worker (2 cores" in out
    assert str(sum(range(10**6))) in out  # the job's answer
    assert out.rstrip().endswith("stopped")
    merged = read_table(workdir / "demo-merged.parquet")
    assert len(merged) > 40 and merged["id"].is_unique
    # both applications ran executors in the worker's directory, and everything is gone now
    work = cache / "spark-run" / str(port) / "work"
    assert len([d for d in work.iterdir() if d.name.startswith("app-")]) == 2
    assert _processes_mentioning(str(cache), f"127.0.0.1:{port}") == []


def test_start_refuses_a_port_held_by_another_process(tmp_path):
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(C360Error, match=f"port {port} is already in use"):
            spark_cluster.start(port, cache=tmp_path)
    assert not (tmp_path / "spark-run" / str(port) / "master.pid").exists()


@pytest.mark.slow
def test_status_of_no_cluster(tmp_path):
    port = free_port()
    st = spark_cluster.status(port, cache=tmp_path)
    assert st["running"] is False and st["url"] == f"spark://127.0.0.1:{port}" and st["workers"] == 0
    assert spark_cluster.stop(port, cache=tmp_path) is False
    proc = run_cli("spark", "status", "--port", str(port), check=False, env={"C360_CACHE": str(tmp_path)})
    assert proc.returncode == 3 and "not running" in proc.stdout


def test_only_loopback_masters_count_as_this_machine():
    assert spark_cluster.is_local_cluster("spark://127.0.0.1:7077")
    assert spark_cluster.is_local_cluster("spark://localhost:7077")
    assert not spark_cluster.is_local_cluster("spark://spark-master:7077")
    assert not spark_cluster.is_local_cluster("local[*]")


@pytest.mark.slow
def test_spark_submit_gets_splinks_jar_on_the_driver_and_keeps_its_own_conf(tmp_path):
    """Under spark-submit (README: spark-submit to a real cluster) the session keeps spark-submit's --conf and
    --jars, adds Splink's jar to them, and the driver can load its UDF classes (Splink registers them there)."""
    script = tmp_path / "job.py"
    script.write_text(
        "from pyspark.sql.types import DoubleType\n"
        "from c360.spark import get_spark\n"
        "spark = get_spark(app_name='submit-check')\n"
        "spark.udf.registerJavaFunction('jw', 'uk.gov.moj.dash.linkage.JaroWinklerSimilarity', DoubleType())\n"
        "conf = spark.sparkContext.getConf()\n"
        "print('partitions', conf.get('spark.sql.shuffle.partitions'))\n"
        "print('jars', conf.get('spark.jars'))\n"
        "print('jw', round(spark.range(1).selectExpr(\"jw('martha', 'marhta')\").first()[0], 4))\n")
    other = tmp_path / "other.jar"
    other.write_bytes(b"")
    bin_dir = Path(sys.executable).parent
    proc = subprocess.run([str(bin_dir / "spark-submit"), "--master", "local[1]", "--conf",
                           "spark.sql.shuffle.partitions=3", "--jars", str(other), str(script)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                               "PYSPARK_PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "partitions 3" in proc.stdout and "jw 0.9611" in proc.stdout
    jars = re.search(r"^jars (.*)$", proc.stdout, re.M).group(1).split(",")
    assert jars[0].endswith("other.jar") and "scala-udf-similarity" in jars[-1]
