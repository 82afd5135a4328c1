"""The nightly's graph step through Neptune's bulk loader: the parts uploaded to an S3 server started here (moto's
server mode) and loaded by a local server following Neptune's documented loader API (neptune_loader_server), which
reads them from that S3 server into a real store with c360's own loader; the graph gate then compares counts."""

from __future__ import annotations

import csv
import io
import json
import urllib.error
import urllib.request

import pandas as pd
import pytest

from c360.errors import InputError
from c360.graph.export import export_graph
from c360.jobs.gates import graph_gate
from c360.jobs.pipeline import StepFailed, StepResult, open_run, run_steps
from c360.jobs.steps import step_graph_load
from c360.settings import Settings, load_settings
from tests.graph.neptune_loader_server import NeptuneLoaderDouble

REGION, KEY, SECRET = "eu-west-1", "AKIDC360TESTLOADER", "test-secret-key"
BUCKET, ROLE = "c360-graph-parts", "arn:aws:iam::123456789012:role/NeptuneLoadFromS3"
NAMES = ["=1+1", "-2+3", "+SUM(A1)", "@cmd", "'quoted", "plain"]   # a spreadsheet would run the first four
ITEMS = pd.DataFrame({"ITEM_ID": [f"p:{i}" for i in range(len(NAMES))], "NAME": NAMES, "PARK": "p", "THEME": "t"})
VISITS = pd.DataFrame({"USER_ID": ["u1", "u1", "u2"], "ITEM_ID": ["p:0", "p:1", "p:1"], "EVENT_VALUE": [1, 2, 3]})


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 server on a free loopback port, with the bucket."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=url, region_name=REGION, aws_access_key_id=KEY, aws_secret_access_key=SECRET) \
        .create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    yield url
    server.stop()


@pytest.fixture
def neptune(s3_endpoint, tmp_path, monkeypatch):
    """The loader double, loading into the embedded store file `neptune.json`; the test's key in the environment,
    where botocore's default chain finds it first."""
    for var in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    with NeptuneLoaderDouble(f"networkx:{tmp_path / 'neptune.json'}", s3_endpoint, REGION, KEY, SECRET) as double:
        yield double


def _run(tmp_path, neptune, s3_endpoint, export):
    settings = Settings(warehouse=tmp_path / "wh", graph={
        "store": f"networkx:{tmp_path / 'neptune.json'}",
        "neptune_loader": {"s3_prefix": f"s3://{BUCKET}/nightly", "iam_role_arn": ROLE, "region": REGION,
                           "endpoint": neptune.url, "min_elements": 0, "poll_interval_s": 0.02,
                           "s3_endpoint_url": s3_endpoint}})
    ctx = open_run(settings, ["graph_export", "graph_load"], run_id="r1")
    run_steps(ctx, [("graph_export", export), ("graph_load", step_graph_load)])
    return ctx


def _export(ctx, drop_part: str | None = None) -> StepResult:
    written = export_graph(ctx.run.graph_dir, engine="local", items=ITEMS, interactions=VISITS)
    if drop_part:
        (ctx.run.graph_dir / drop_part).unlink()
    return StepResult(outputs={"csv_dir": str(ctx.run.graph_dir), "counts": written.counts})


@pytest.mark.slow   # with moto's server start: about 3 s
def test_parts_go_through_s3_and_the_loader_with_exact_values_and_counts_the_gate_accepts(tmp_path, neptune,
                                                                                         s3_endpoint):
    import boto3

    ctx = _run(tmp_path, neptune, s3_endpoint, _export)
    outputs = ctx.manifest.outputs()
    exported, loaded = outputs["graph_export"]["counts"], outputs["graph_load"]
    assert loaded["counts"] == exported and graph_gate(exported, loaded["counts"], loaded["exact_counts"])["passed"]
    bulk = loaded["neptune_loader"]
    assert bulk["status"] == "LOAD_COMPLETED" and bulk["files"] == 3 and bulk["source"] == f"s3://{BUCKET}/nightly/r1/"
    assert bulk["total_records"] == sum(n for by_label in exported.values() for n in by_label.values())
    assert neptune.requests[0] == ("POST", "/loader", {
        "source": f"s3://{BUCKET}/nightly/r1/", "format": "csv", "iamRoleArn": ROLE, "region": REGION, "mode": "NEW",
        "failOnError": "TRUE", "parallelism": "HIGH", "updateSingleCardinalityProperties": "TRUE",
        "queueRequest": "TRUE"})
    assert [p for m, p, _ in neptune.requests[1:]] == [f"/loader/{bulk['load_id']}"] * (len(neptune.requests) - 1) \
        and len(neptune.requests) >= 3                        # polled while LOAD_IN_PROGRESS
    rows = list(csv.reader(io.StringIO(neptune.fetched["nightly/r1/vertex-attraction-00000.csv"].decode())))
    assert sorted(r[rows[0].index("name:String(single)")] for r in rows[1:]) == sorted(NAMES)   # no ' before = or -
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION)
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="nightly/r1/")["KeyCount"] == 0    # loaded: removed from S3
    unsigned = urllib.request.Request(neptune.url + "/loader", data=json.dumps({}).encode(), method="POST")
    with pytest.raises(urllib.error.HTTPError, match="403"):   # the double insists on a signature
        urllib.request.urlopen(unsigned, timeout=10)


@pytest.mark.slow
def test_a_failed_load_fails_the_step_naming_the_loaders_errors(tmp_path, neptune, s3_endpoint):
    with pytest.raises(StepFailed) as failed:   # visited edges whose attraction vertices are missing
        _run(tmp_path, neptune, s3_endpoint, lambda ctx: _export(ctx, drop_part="vertex-attraction-00000.csv"))
    message = str(failed.value)
    assert failed.value.step == "graph_load" and "ended LOAD_FAILED" in message
    assert f"s3://{BUCKET}/nightly/r1/edge-visited-00000.csv record 0: FROM_OR_TO_VERTEX_ARE_MISSING: edge " in message
    assert "does not exist" in message


def test_loader_settings_from_the_environment_and_errors_naming_them():
    env = {"C360_NEPTUNE_S3_PREFIX": "s3://parts-bucket/graph", "C360_NEPTUNE_IAM_ROLE_ARN": ROLE,
           "C360_NEPTUNE_REGION": REGION, "C360_NEPTUNE_LOADER_ENDPOINT": "https://db.example:8182"}
    cfg = load_settings(env=env).graph.neptune_loader
    assert cfg.configured and (cfg.s3_prefix, cfg.region, cfg.endpoint) == (env["C360_NEPTUNE_S3_PREFIX"], REGION,
                                                                            "https://db.example:8182")
    assert not load_settings(env={"C360_NEPTUNE_S3_PREFIX": "s3://parts-bucket"}).graph.neptune_loader.configured
    with pytest.raises(InputError, match=r"graph.neptune_loader.s3_prefix: .*s3://BUCKET"):
        load_settings(env={"C360_NEPTUNE_S3_PREFIX": "parts-bucket/graph"})
    with pytest.raises(InputError, match=r"graph.neptune_loader.iam_role_arn"):
        load_settings(env={"C360_NEPTUNE_IAM_ROLE_ARN": "NeptuneLoadFromS3"})
