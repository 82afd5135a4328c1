"""The one Spark session factory every job uses."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from c360.settings import Settings, load_settings

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
}


def get_spark(settings: Settings | None = None, app_name: str = "c360", checkpoint_dir: str | None = None):
    """Return the shared SparkSession (created once per process).

    `local[*]` unless settings/C360_SPARK_MASTER say otherwise; Splink's similarity jar on the
    classpath (Jaro-Winkler, Damerau-Levenshtein UDFs); Arrow on; quiet logs; a checkpoint directory
    (Splink's Spark backend needs one).
    """
    from pyspark.sql import SparkSession
    from splink.backends.spark import similarity_jar_location

    settings = settings or load_settings()
    if not under_spark_submit() and settings.spark_master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", _python())  # local workers use this interpreter
    conf = dict(_DEFAULT_CONF)
    conf["spark.jars"] = similarity_jar_location()
    # no tables are saved, but Spark creates its warehouse folder anyway: keep it out of the user's directory
    conf["spark.sql.warehouse.dir"] = str(Path(tempfile.gettempdir()) / "c360-spark-warehouse")
    conf.update(settings.spark_conf)
    builder = SparkSession.builder.appName(app_name)
    if not under_spark_submit():  # under spark-submit its --master (and --conf) decide
        builder = builder.master(settings.spark_master)
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    ckpt = checkpoint_dir or settings.spark_conf.get("c360.checkpointDir") or str(
        Path(tempfile.gettempdir()) / "c360-spark-checkpoints"
    )
    Path(ckpt).mkdir(parents=True, exist_ok=True) if "://" not in ckpt else None
    spark.sparkContext.setCheckpointDir(ckpt)
    return spark


def under_spark_submit() -> bool:
    """True when this process was launched by spark-submit (the JVM gateway already runs)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def _python() -> str:
    import sys

    return sys.executable
