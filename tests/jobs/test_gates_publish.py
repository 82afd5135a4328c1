"""Quality gates, the manifest and atomic publishing, without Spark."""

from __future__ import annotations

import os

import pytest

from c360.errors import InputError
from c360.settings import Settings
from jobs.gates import er_gate, graph_gate, recsys_gate
from jobs.nightly import deep_merge, nightly_config
from jobs.pipeline import StepFailed, StepResult, open_run, run_steps
from jobs.publish import current_run_dir, publish


def test_gates():
    assert er_gate(0.95, 0.9, "truth")["passed"] and not er_gate(0.85, 0.9, "truth")["passed"]
    assert er_gate(None, 0.9, "")["passed"]  # nothing to compare against: not applicable
    metrics = {"auto": {"ndcg@10": 0.46}, "popularity": {"ndcg@10": 0.44}}
    assert recsys_gate("auto", metrics, "popularity", 1.0)["passed"]
    assert not recsys_gate("auto", metrics, "popularity", 1.1)["passed"]
    assert not recsys_gate("als", metrics, "popularity", 1.0)["passed"]  # no metrics → fails, never passes silently
    exp = {"vertices": {"customer": 3}, "edges": {"SameAs": 3}}
    assert graph_gate(exp, {"vertices": {"customer": 3, "match": 2}, "edges": {"SameAs": 3}})["passed"]
    off = graph_gate(exp, {"vertices": {"customer": 2}, "edges": {"SameAs": 3}})
    assert not off["passed"] and "customer: expected 3, found 2" in off["detail"]
    # a shared Gremlin store loaded without --drop may hold more (earlier runs), never less
    assert graph_gate(exp, {"vertices": {"customer": 5}, "edges": {"SameAs": 4}}, exact=False)["passed"]
    assert not graph_gate(exp, {"vertices": {"customer": 2}, "edges": {"SameAs": 4}}, exact=False)["passed"]


def test_config_layers(tmp_path):
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}
    cfg = tmp_path / "c.yaml"
    cfg.write_text("recsys: {algorithms: [popularity]}\ngates: {er_f1_min: 0.5}\n")
    from c360.settings import load_settings

    config = nightly_config(load_settings(cfg, env={}), {"er": {"engine": "duckdb"}})
    assert config["recsys"]["algorithms"] == ["popularity"] and config["recsys"]["serve"] == "auto"
    assert config["gates"]["er_f1_min"] == 0.5 and config["er"]["engine"] == "duckdb"


def test_publish_is_an_atomic_symlink_switch(tmp_path):
    wh = tmp_path
    (wh / "runs" / "a").mkdir(parents=True)
    (wh / "runs" / "b").mkdir()
    assert current_run_dir(wh) is None
    publish(wh, wh / "runs" / "a")
    assert current_run_dir(wh) == (wh / "runs" / "a").resolve()
    publish(wh, wh / "runs" / "b")
    assert os.readlink(wh / "current") == os.path.join("runs", "b")  # relative: the warehouse can move
    assert not [p for p in wh.iterdir() if p.name.startswith(".current")]


def test_runner_marks_failure_and_resumes(tmp_path):
    settings = Settings(warehouse=tmp_path)
    calls = []

    def ok(name):
        def step(ctx):
            calls.append(name)
            return StepResult(outputs={"n": len(calls)}, rows={name: 1})
        return step

    state = {"fail": True}

    def flaky(ctx):
        calls.append("flaky")
        if state["fail"]:
            raise ValueError("disk full")
        return StepResult(outputs={"from_a": ctx.output("a", "n")})

    steps = [("a", ok("a")), ("flaky", flaky), ("c", ok("c"))]
    ctx = open_run(settings, {}, [n for n, _ in steps], run_id="r1")
    with pytest.raises(StepFailed, match="step 'flaky' failed: disk full"):
        run_steps(ctx, steps)
    assert ctx.manifest.data["status"] == "failed" and ctx.manifest.data["steps"]["c"]["status"] == "pending"
    state["fail"] = False
    ctx = open_run(settings, {}, [n for n, _ in steps], resume="r1")
    run_steps(ctx, steps)
    assert calls == ["a", "flaky", "flaky", "c"]  # a was not redone
    assert ctx.manifest.data["steps"]["flaky"]["outputs"] == {"from_a": 1}
    with pytest.raises(InputError, match="no such run"):
        open_run(settings, {}, ["a"], resume="nope")
    with pytest.raises(InputError, match="already exists"):
        open_run(settings, {}, ["a"], run_id="r1")
