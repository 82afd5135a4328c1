"""deploy/grafana-c360.json is a dashboard Grafana imports (a Prometheus data source asked for on import) that queries
only series api/metrics.py declares."""

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana-c360.json"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def _declared() -> set[str]:
    """Every series name a scrape of api/metrics.py can hold (a counter's _total, a histogram's buckets, ...)."""
    from prometheus_client.metrics import MetricWrapperBase

    from c360.api import metrics

    names = set()
    for collector in [c for c in vars(metrics).values() if isinstance(c, MetricWrapperBase)]:
        for family in collector.describe():
            names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def _exprs(panels: list) -> list[str]:
    return [t["expr"] for p in panels for t in p.get("targets", [])] + \
        [e for p in panels for e in _exprs(p.get("panels", []))]


def test_the_dashboard_queries_only_declared_metrics():
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = _exprs(dashboard["panels"])
    queried = {name for e in exprs for name in re.findall(r"\bc360_[a-z0-9_]+", e)}
    declared = _declared()
    assert queried and queried <= declared, sorted(queried - declared)
    for wanted in ("c360_http_requests_total", "c360_http_request_duration_seconds_bucket", "c360_events_total",
                   "c360_customer_matches_total", "c360_customer_commits_total", "c360_reload_last_seconds",
                   "c360_run_gate_value", "c360_latest_run_info", "c360_latest_run_gate_passed",
                   "c360_realtime_log_lag_records", "c360_realtime_log_lag_bytes"):
        assert wanted in queried, wanted


def test_the_dashboard_imports_into_grafana():
    """What an import needs: a title and uid, the data source as an input, unique panel ids, every panel on the
    24-column grid and every query on that data source."""
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] and dashboard["uid"] and dashboard["schemaVersion"] >= 30
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for p in dashboard["panels"]:
        grid = p["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0, p["title"]
        for t in p.get("targets", []):
            assert t["datasource"]["uid"] == "${DS_PROMETHEUS}" and t["expr"].count("(") == t["expr"].count(")")
