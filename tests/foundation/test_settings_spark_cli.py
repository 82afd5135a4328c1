"""Settings, the Spark session factory, the shipped data loader and the CLI tree."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from c360.cli import build_parser
from c360.errors import InputError
from c360.recsys import sigir17
from c360.settings import load_settings
from tests.conftest import run_cli


def test_settings_yaml_then_env_override(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("warehouse: /data/wh\ngraph: networkx\napi_keys: {k1: reader}\ngates: {er_f1_min: 0.9}\n")
    s = load_settings(cfg, env={"C360_GRAPH": "gremlin://127.0.0.1:8182", "C360_API_KEYS": "a:reader,b:pii"})
    assert str(s.warehouse) == "/data/wh"
    assert s.graph.store == "gremlin://127.0.0.1:8182"
    assert s.api_keys == {"a": "reader", "b": "pii"}
    assert s.gates.er_f1_min == 0.9 and s.gates.recsys_min_ratio == 1.0
    assert s.spark_master == "local[*]"


def test_settings_bad_role_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="C360_API_KEYS"):
        load_settings(env={"C360_API_KEYS": "k:admin"})
    with pytest.raises(InputError, match="nope.yaml"):
        load_settings(tmp_path / "nope.yaml", env={})


def test_spark_smoke(spark):
    jars = spark.sparkContext.getConf().get("spark.jars")
    assert "similarity" in jars.lower() or "scala-udf" in jars.lower()
    assert spark.conf.get("spark.sql.execution.arrow.pyspark.enabled") == "true"
    df = spark.createDataFrame([("a", 1), ("a", 2), ("b", 5)], ["k", "v"])
    assert {r.k: r.s for r in df.groupBy("k").sum("v").withColumnRenamed("sum(v)", "s").collect()} == {"a": 3, "b": 5}
    assert spark.sparkContext.getCheckpointDir()
    # the similarity jar's UDFs are usable from SQL
    from pyspark.sql.types import DoubleType

    spark.udf.registerJavaFunction("jw", "uk.gov.moj.dash.linkage.JaroWinklerSimilarity", DoubleType())
    assert spark.sql("select jw('martha', 'marhta') as s").first().s > 0.9


def test_shipped_data_loads():
    visits, items = sigir17.load_visits(), sigir17.load_items()
    assert len(items) == 113 and items.ITEM_ID.is_unique
    assert set(visits.PARK) == {"caliAdv", "disHolly", "epcot"}
    assert set(visits.ITEM_ID) <= set(items.ITEM_ID)
    assert len(visits) == 138_110


@pytest.mark.slow
def test_help_for_every_group():
    parser = build_parser()
    groups = set(parser._subparsers._group_actions[0].choices)
    assert {"gremlin", "recsys", "er", "graph", "nightly", "serve"} <= groups
    for group in sorted(groups):
        proc = run_cli(group, "--help")
        assert "usage: c360" in proc.stdout


def test_the_summary_names_every_command_of_a_group():
    """`c360 --help` is the summary a new user reads: a group that lists its commands lists them all."""
    groups = build_parser()._subparsers._group_actions[0]
    summary = {a.dest: a.help for a in groups._choices_actions}
    for group in ("er", "recsys", "graph"):
        commands = groups.choices[group]._subparsers._group_actions[0].choices
        assert all(name in summary[group] for name in commands), (group, summary[group], sorted(commands))


def test_broadcast_joins_stay_within_a_configured_result_size_limit():
    """A broadcast table is collected through the driver and counts against spark.driver.maxResultSize: with a
    limit configured, both broadcast thresholds default to a quarter of it (an explicit threshold is kept)."""
    from c360.spark import _broadcast_within_result_limit

    capped = _broadcast_within_result_limit({"spark.driver.maxResultSize": "16m"})
    assert capped == {"spark.sql.autoBroadcastJoinThreshold": str(4 << 20),
                      "spark.sql.adaptive.autoBroadcastJoinThreshold": str(4 << 20)}
    assert _broadcast_within_result_limit({}) == {}
    assert _broadcast_within_result_limit({"spark.driver.maxResultSize": "0"}) == {}  # 0: unlimited
    explicit = {"spark.driver.maxResultSize": "1g", "spark.sql.autoBroadcastJoinThreshold": "-1"}
    assert _broadcast_within_result_limit(explicit) == {"spark.sql.adaptive.autoBroadcastJoinThreshold": str(1 << 28)}


@pytest.mark.jvm
@pytest.mark.slow
@pytest.mark.parametrize("way", ["PYSPARK_SUBMIT_ARGS", "spark-defaults.conf", "spark-submit", "settings"])
def test_the_broadcast_cap_follows_a_limit_however_it_is_set(tmp_path, way):
    """spark.driver.maxResultSize given through PYSPARK_SUBMIT_ARGS, spark-defaults.conf, spark-submit's --conf or the
    settings: the cap comes from the session's effective conf, so a Spark match of 200k records no longer outgrows
    the limit with a 10 MB broadcast."""
    script = tmp_path / "cap.py"
    script.write_text("from c360.settings import load_settings\nfrom c360.spark import get_spark\n"
                      "s = get_spark(load_settings(), app_name='cap')\n"
                      "print(s.conf.get('spark.sql.autoBroadcastJoinThreshold'), "
                      "s.conf.get('spark.sql.adaptive.autoBroadcastJoinThreshold'))\ns.stop()\n")
    env = {**os.environ, "C360_SPARK_MASTER": "local[1]"}
    env.pop("PYSPARK_SUBMIT_ARGS", None)
    command = [sys.executable, str(script)]
    if way == "PYSPARK_SUBMIT_ARGS":
        env["PYSPARK_SUBMIT_ARGS"] = "--conf spark.driver.maxResultSize=16m pyspark-shell"
    elif way == "spark-defaults.conf":
        (tmp_path / "conf").mkdir()
        (tmp_path / "conf" / "spark-defaults.conf").write_text("spark.driver.maxResultSize 16m\n")
        env["SPARK_CONF_DIR"] = str(tmp_path / "conf")
    elif way == "spark-submit":
        # hermetic, as make test runs it (virtualenv not activated): spark-submit is a bash script that finds
        # SPARK_HOME and the driver's Python through PATH, so this virtualenv's bin goes first
        bin_dir = Path(sys.executable).parent
        env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", PYSPARK_PYTHON=sys.executable)
        env.pop("SPARK_HOME", None)
        command = [str(bin_dir / "spark-submit"), "--master", "local[1]", "--conf",
                   "spark.driver.maxResultSize=16m", str(script)]
    else:
        (tmp_path / "c360.yaml").write_text("spark_conf: {spark.driver.maxResultSize: 16m}\n")
        env["C360_CONFIG"] = str(tmp_path / "c360.yaml")
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == [str(4 << 20), str(4 << 20)], out.stdout
