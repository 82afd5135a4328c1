"""`c360 er match --engine spark --out` on any Hadoop URI: written through Hadoop's FileSystem (file:// here, the
same code as hdfs:// and s3a://), the same match ids as a local path and as the DuckDB engine (the one Spark match of
the suite: Spark and DuckDB give the same clusters on a small set), stable against a previous output on a URI;
DuckDB and the local-only readers reject the URIs they cannot use with an InputError naming the path."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import functions as F

from c360 import hadoop_fs
from c360.entity_resolution import match as MT
from c360.entity_resolution import phases as P
from c360.entity_resolution import sources as S
from c360.entity_resolution.evaluate import cluster_agreement, evaluate
from c360.entity_resolution.explain import explain_match, explain_pair
from c360.entity_resolution.generate import generate
from c360.entity_resolution.labels import evaluate_labels
from c360.entity_resolution.match import match
from c360.entity_resolution.online import RealtimeMatcher
from c360.entity_resolution.phases.run import output_path
from c360.errors import InputError
from c360.layout import MatchOutput
from tests.conftest import run_cli

SHIFT = 1000
KEY = ["id", "match_id"]


@pytest.fixture(scope="module")
def merged(tmp_path_factory):
    """A small generated set, merged as the merge job does (pandas), with its truth."""
    d = tmp_path_factory.mktemp("hadoop-paths")
    generate(80, seed=5, out_dir=d / "src")
    parts = [S.to_merged_pandas(t, pd.read_csv(d / "src" / t.file, dtype=str),
                                pd.read_csv(d / "src" / t.address.file, dtype=str)) for t in S.CUSTOMER_TABLES]
    df = pd.concat(parts, ignore_index=True)
    df[S.merged_order(df.columns)].to_parquet(d / "merged.parquet", index=False)
    return d


def _ids(path) -> pd.DataFrame:
    return pd.read_parquet(path, columns=KEY).sort_values("id", ignore_index=True)


def _write_to(run, phases, out, previous=None):
    """The ids and write phases again (training and clustering done once): `out` with ids stable against
    `previous` (None: an existing `out`)."""
    run = dataclasses.replace(run, output=MatchOutput(out), previous=previous)
    prepared, trained, blocking, scored, clusters = phases
    assigned = P.assign_ids(run, prepared, clusters)
    return MT.result(run, P.write(run, prepared, trained, blocking, scored, clusters, assigned, {}))


@pytest.mark.slow
def test_spark_match_on_a_hadoop_uri_equals_duckdb_and_keeps_ids_stable(merged, spark, tmp_path):
    uri = f"file://{tmp_path}/uri/matched.parquet"
    with P.MatchRun.open([merged / "merged.parquet"], engine="spark", out=uri, spark=spark, u_max_pairs=5e4,
                         threshold=0.9) as run:
        prepared = P.prepare(run)
        trained = P.train(run, prepared)
        blocking = P.block(run, prepared, trained)
        scored = P.predict(run, prepared, blocking)
        phases = prepared, trained, blocking, scored, P.cluster(run, prepared, scored)
        res = _write_to(run, phases, uri)
        local = _write_to(run, phases, tmp_path / "local" / "matched.parquet")
        o = MatchOutput(uri)
        assert res.out == uri and res.report_path == f"{uri}.report.json" and o.is_uri
        assert all(hadoop_fs.exists(spark, p) for p in (o.matched, o.report, o.model, o.pairs))
        on_disk = tmp_path / "uri"
        assert (on_disk / "matched.parquet").is_dir() and (on_disk / "matched.parquet.pairs.parquet").is_dir()
        report = json.loads((on_disk / "matched.parquet.report.json").read_text())
        assert report["clusters"] == res.clusters == local.clusters and report["id"] == "id"
        assert json.loads((on_disk / "matched.parquet.model.json").read_text())["comparisons"]
        first = _ids(on_disk / "matched.parquet")
        assert first.equals(_ids(tmp_path / "local" / "matched.parquet"))
        _same_as_duckdb(merged, on_disk / "matched.parquet", tmp_path)

        # a previous output on a URI whose ids differ from 1..k: its ids are taken (read through Hadoop), and the
        # existing output at the same URI is replaced
        prev = f"file://{tmp_path}/prev/matched.parquet"
        shifted = spark.read.parquet(uri).withColumn("match_id", F.col("match_id") + SHIFT)
        hadoop_fs.spark_write(shifted, prev)
        hadoop_fs.write_text(spark, MatchOutput(prev).report, hadoop_fs.read_text(spark, o.report))
        _write_to(run, phases, uri, previous=prev)
        assert _ids(on_disk / "matched.parquet")["match_id"].tolist() == (first["match_id"] + SHIFT).tolist()
        # without --previous the existing output at the URI is the previous one: the ids stay, each kept (the id
        # changes written through Hadoop beside it)
        _write_to(run, phases, uri)
        assert _ids(on_disk / "matched.parquet")["match_id"].tolist() == (first["match_id"] + SHIFT).tolist()
        changes = pd.read_parquet(on_disk / "matched.parquet.id_changes.parquet")
        assert set(changes["change"]) == {"kept"} and len(changes) == first["match_id"].nunique()
    # nothing half-written or moved aside is left beside the outputs
    assert sorted(p.name for p in on_disk.iterdir() if not p.name.endswith(".crc")) == sorted(
        ["matched.parquet", "matched.parquet.report.json", "matched.parquet.model.json",
         "matched.parquet.pairs.parquet", "matched.parquet.id_changes.parquet"])
    # readers of a match output take a file: URI as the local path it is
    assert evaluate(uri, merged / "src" / "truth.csv")["records"] == len(first)


def _same_as_duckdb(merged: Path, spark_out: Path, tmp_path: Path) -> None:
    """The DuckDB engine on the same input and settings: the same clusters and the same match id for every record
    (both number clusters by their smallest record id); the Spark run's model (Spark SQL) is explained with DuckDB."""
    duck_out = tmp_path / "duckdb.parquet"
    res = match([merged / "merged.parquet"], engine="duckdb", out=duck_out, u_max_pairs=5e4, threshold=0.9)
    duck, sp = pd.read_parquet(duck_out), pd.read_parquet(spark_out)
    assert duck_out.is_file() and len(duck) == len(sp) == res.records
    both = cluster_agreement(duck, sp)
    assert both["records_in_different_clusters"] == 0, both
    assert _ids(duck_out).equals(_ids(spark_out))
    assert evaluate(sp, merged / "src" / "truth.csv")["f1"] > 0.97
    big = sp.groupby("match_id").size().idxmax()
    ids = sp.loc[sp["match_id"] == big, "id"].tolist()
    assert len(ids) > 1 and "<html" in explain_pair(spark_out, ids[0], ids[1]).lower()


@pytest.mark.parametrize("uri", ["s3a://bucket/c360/matched.parquet", "hdfs://namenode:8020/c360/matched.parquet"])
def test_duckdb_rejects_a_hadoop_uri_naming_out(merged, uri):
    with pytest.raises(InputError, match=f"--out {uri}: the duckdb engine .*--engine spark"):
        match([merged / "merged.parquet"], engine="duckdb", out=uri)
    with pytest.raises(InputError, match=f"--previous {uri}"):
        match([merged / "merged.parquet"], engine="duckdb", out=merged / "duck.parquet", previous=uri)


def test_duckdb_cli_names_out(merged):
    proc = run_cli("er", "match", "--engine", "duckdb", "--input", str(merged / "merged.parquet"),
                   "--out", "s3a://bucket/matched.parquet", check=False, timeout=120)
    assert proc.returncode != 0 and "--out s3a://bucket/matched.parquet" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_readers_of_an_output_on_a_remote_uri_name_it(merged):
    uri = "hdfs://namenode:8020/c360/matched.parquet"
    for read in (lambda: evaluate(uri, merged / "src" / "truth.csv"), lambda: explain_match(uri, 1),
                 lambda: evaluate_labels(uri, merged / "src" / "labels.csv"), lambda: RealtimeMatcher.load(uri)):
        with pytest.raises(InputError, match=f"^{uri}: a match output is read from local paths only"):
            read()


def test_match_output_paths():
    local = MatchOutput("runs/1/er/matched.parquet")
    assert local.report == local.matched.with_name("matched.parquet.report.json") and not local.is_uri
    remote = MatchOutput("s3a://bucket/er/matched.parquet")
    assert (remote.matched, remote.pairs) == ("s3a://bucket/er/matched.parquet",
                                              "s3a://bucket/er/matched.parquet.pairs.parquet")
    assert MatchOutput.local("file:///data/er/matched.parquet").model.as_posix() == "/data/er/matched.parquet.model.json"
    assert output_path("file:///data/m.parquet", "duckdb", "--out") == Path("/data/m.parquet")
    assert output_path("hdfs:///data/m.parquet", "spark", "--out") == "hdfs:///data/m.parquet"
    assert output_path("data/m.parquet", "spark", "--out") == Path("data/m.parquet")
    assert hadoop_fs.is_uri("file:/data/x") and not hadoop_fs.is_uri("C:/data/x") and not hadoop_fs.is_uri("data/x")
