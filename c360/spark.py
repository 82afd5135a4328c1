"""The one Spark session factory every job uses."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from c360.settings import Settings, load_settings
from c360.spark_cluster import is_local_cluster

_DEFAULT_CONF = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.pyspark.fallback.enabled": "true",
    "spark.sql.shuffle.partitions": "8",
    "spark.default.parallelism": "8",
    "spark.driver.memory": "4g",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.adaptive.enabled": "true",
    "spark.driver.extraJavaOptions": "-Dlog4j.rootLogger=ERROR,console",
    # files Spark writes through Hadoop's FileSystem (part files, their .crc) are 0600 and its directories 0700:
    # the local file system sets exactly these modes on what it creates, whatever the process's umask
    "spark.hadoop.fs.permissions.umask-mode": "077",
}


# a standalone cluster on loopback (c360.spark_cluster): the executors reach the driver on loopback too; one core
# and 1 GB each, so a worker of 2 cores and 2 GB runs two executor JVMs and shuffles cross processes as on a cluster
_LOCAL_CLUSTER_CONF = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.executor.cores": "1",
    "spark.executor.memory": "1g",
}

# Classes pyspark names by their simple name on every call: `functions` on each call of pyspark.sql.functions,
# `PythonUtils` on each list of columns or paths. py4j tries such a name in each package pyspark star-imports, and
# each miss searches the ~250 jars of Spark's class path; imported by full name, a class is found at once
# (pyspark.sql.functions.col: 1.3 -> 0.6 ms a call; a warm Spark graph export of the sample: about 11% less JVM CPU)
_SINGLE_IMPORTS = ("org.apache.spark.sql.functions", "org.apache.spark.api.python.PythonUtils",
                   "org.apache.spark.sql.SparkSession", "org.apache.spark.sql.api.python.PythonSQLUtils",
                   "org.apache.spark.api.python.SimplePythonFunction", "org.apache.spark.sql.Column")


def get_spark(settings: Settings | None = None, app_name: str = "c360", checkpoint_dir: str | None = None):
    """Return the shared SparkSession (created once per process).

    `local[*]` unless settings/C360_SPARK_MASTER say otherwise (`spark://HOST:PORT` for a standalone cluster,
    e.g. the one `c360 spark start` runs on loopback); Splink's similarity jar on the classpath of the driver and
    the executors (Jaro-Winkler, Damerau-Levenshtein UDFs); Arrow on; quiet logs; a checkpoint directory (Splink's
    Spark backend needs one; on a cluster it must be storage every executor reaches: `c360.checkpointDir`).
    Settings' spark_conf overrides every default here.
    """
    from py4j.java_gateway import java_import
    from pyspark.sql import SparkSession
    from splink.backends.spark import similarity_jar_location

    settings = settings or load_settings()
    on_this_machine = settings.spark_master.startswith("local") or is_local_cluster(settings.spark_master)
    if not under_spark_submit() and on_this_machine:
        # Python workers (local threads' or a loopback cluster's executors) run this interpreter; a remote
        # cluster's executors take PYSPARK_PYTHON / spark.pyspark.python from the deployment
        os.environ.setdefault("PYSPARK_PYTHON", _python())
    submitted = _submitted_conf()
    conf = dict(_DEFAULT_CONF)
    if not under_spark_submit() and is_local_cluster(settings.spark_master):
        conf.update(_LOCAL_CLUSTER_CONF)
    # no tables are saved, but Spark creates its warehouse folder anyway: keep it out of the user's directory
    conf["spark.sql.warehouse.dir"] = str(Path(tempfile.gettempdir()) / "c360-spark-warehouse")
    # spark-submit's own --conf / --jars / --packages win over these defaults (the config's spark_conf wins over both)
    conf = {key: value for key, value in conf.items() if key not in submitted}
    conf.update(settings.spark_conf)
    # Splink's jar joins the jars already asked for (spark-submit --jars/--packages, spark_conf spark.jars) and is
    # shipped to the executors by the driver's file server
    conf["spark.jars"] = _join_jars(submitted.get("spark.jars"), settings.spark_conf.get("spark.jars"),
                                    similarity_jar_location())
    builder = SparkSession.builder.appName(app_name)
    if not under_spark_submit():  # under spark-submit its --master (and --conf) decide
        builder = builder.master(settings.spark_master)
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    for name in _SINGLE_IMPORTS:
        java_import(spark._jvm, name)
    # from the session's effective conf: a limit may come from spark-defaults.conf, PYSPARK_SUBMIT_ARGS or
    # spark-submit as well as from the settings (broadcast thresholds are runtime SQL settings)
    effective = dict(spark.sparkContext.getConf().getAll())
    for key, value in _broadcast_within_result_limit(effective).items():
        spark.conf.set(key, value)
    if under_spark_submit():
        _load_on_driver(spark, similarity_jar_location(), submitted.get("spark.jars"))
    ckpt = checkpoint_dir or settings.spark_conf.get("c360.checkpointDir") or str(
        Path(tempfile.gettempdir()) / "c360-spark-checkpoints"
    )
    Path(ckpt).mkdir(parents=True, exist_ok=True) if "://" not in ckpt else None
    spark.sparkContext.setCheckpointDir(ckpt)
    return spark


def _submitted_conf() -> dict[str, str]:
    """The Spark configuration spark-submit gave this driver (empty outside spark-submit)."""
    if not under_spark_submit():
        return {}
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()  # joins the JVM spark-submit started; its conf holds --conf, --jars, ...
    return dict(SparkConf().getAll())


def _load_on_driver(spark, jar: str, submitted_jars: str | None) -> None:
    """Under spark-submit the driver's JVM started before the session was configured, so a jar set in spark.jars
    reaches the executors but not the driver's classpath, where Splink registers its UDF classes; ADD JAR puts it
    there (unless spark-submit --jars already did)."""
    if any(j.strip().endswith("/" + Path(jar).name) for j in (submitted_jars or "").split(",")):
        return
    if jar not in _ADDED_JARS:
        spark.sql(f"ADD JAR '{jar}'")
        _ADDED_JARS.add(jar)


_ADDED_JARS: set[str] = set()


def _join_jars(*lists: str | None) -> str:
    """Comma-separated jar lists joined, each jar once, in order."""
    return ",".join(dict.fromkeys(j.strip() for jars in lists for j in (jars or "").split(",") if j.strip()))


_SIZE_UNITS = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_BROADCAST_KEYS = ("spark.sql.autoBroadcastJoinThreshold", "spark.sql.adaptive.autoBroadcastJoinThreshold")


def size_bytes(text: str) -> int | None:
    """Spark's size strings ("16m", "1g", "512k", "1024") in bytes; None when it is not one."""
    m = re.fullmatch(r"\s*(\d+)\s*([bkmgt]?)b?\s*", str(text).lower())
    return int(m.group(1)) * _SIZE_UNITS[m.group(2) or "b"] if m else None


def _broadcast_within_result_limit(conf: dict[str, str]) -> dict[str, str]:
    """Broadcast-join thresholds that keep a broadcast table (collected through the driver, and counted against
    spark.driver.maxResultSize) well inside a configured result-size limit: a quarter of it, unless set."""
    limit = size_bytes(conf.get("spark.driver.maxResultSize", "")) or 0
    if limit <= 0:  # unset, or 0 = unlimited
        return {}
    return {key: str(limit // 4) for key in _BROADCAST_KEYS if key not in conf}


def under_spark_submit() -> bool:
    """True when this process was launched by spark-submit (the JVM gateway already runs)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def _python() -> str:
    import sys

    return sys.executable
