"""A run's report.html written from the run's own files: after every nightly (failed runs too) and by
`c360 report --run DIR`. Every file is found through the run's layout, not the paths its manifest recorded, so a run
copied elsewhere renders too; the run it replaces (for the report's "vs the published run" columns) is its sibling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from c360.errors import InputError
from c360.io import atomic_path, read_json_file
from c360.jobs import live_intake
from c360.jobs.report import render_report
from c360.layout import RunLayout, Warehouse
from c360.settings import load_settings


def _read_json(path: Path) -> dict:
    """A step's JSON output, or {} when it was never written (a failed run's report shows what exists)."""
    return read_json_file(path) if Path(path).is_file() else {}


def read_run(run: RunLayout) -> dict[str, Any]:
    """What the report shows of one run: its manifest, and the ER, recommender, graph and real-time summaries."""
    if not run.manifest.is_file():
        raise InputError(f"{run.root}: not a run directory ({run.manifest.name} not found)")
    manifest = read_json_file(run.manifest)
    outputs = {n: s.get("outputs") or {} for n, s in manifest.get("steps", {}).items() if s.get("status") == "succeeded"}
    er: dict[str, Any] = {}
    if "match" in outputs:
        metrics, report = _read_json(run.er_metrics), _read_json(run.match.report)
        er = {"evaluation": metrics.get("evaluation"), "pr_curve": metrics.get("pr_curve"),
              "histogram": report.get("match_probability_histogram"), "threshold": report.get("threshold"),
              "threshold_why": (report.get("threshold_choice") or {}).get("why"),
              "config": report.get("config"), "invalid_values": report.get("unparseable"),
              "id_changes": report.get("id_changes"),
              "labels": (report.get("training") or {}).get("labels")}
    recsys: dict[str, Any] = {}
    if "recsys_evaluate" in outputs:
        evaluation = _read_json(run.recsys_metrics)
        recsys = {"metrics": evaluation.get("algorithms"), "split": evaluation.get("split"),
                  "time_ordered": evaluation.get("time_ordered")}
    graph = {"counts": (outputs.get("graph_load") or outputs.get("graph_export") or {}).get("counts")}
    return {"run_id": run.run_id, "manifest": manifest, "er": er, "recsys": recsys, "graph": graph,
            "realtime": live_intake.summary(run)}


def replaced_run(run: RunLayout) -> RunLayout | None:
    """The published run this one replaces: the one published when it read the real-time logs (what the nightly
    publishes over, c360.jobs.live_intake.base_run), or, for a run that stopped before, the one published now;
    None when there is none or its directory is gone."""
    warehouse = Warehouse(run.root.parent.parent)
    run_id = live_intake.base_run(run)
    if run_id is None and not run.realtime.is_file():   # the run never read the logs (it stopped before the match)
        current = warehouse.current()
        run_id = current.run_id if current is not None and current.root != run.root.resolve() else None
    before = warehouse.run(run_id) if run_id else None
    return before if before is not None and before.manifest.is_file() else None


def write_report(run: RunLayout, out: Path | None = None) -> Path:
    """`out` (default: the run's report.html) rendered from the run's files and the run it replaces."""
    data = read_run(run)
    before = replaced_run(run)
    # the metrics charted are those the run's own settings chose (ndcg@k, hit@k), as its gates read them
    settings = load_settings(env={}).with_sections(data["manifest"].get("config") or {}, str(run.manifest))
    page = render_report(data["manifest"], data["er"], data["recsys"], data["graph"], metric=settings.recsys.ndcg,
                         session_metric=settings.recsys.session_metric, realtime=data["realtime"],
                         previous=read_run(before) if before is not None else None)
    path = Path(out) if out else run.report_html
    with atomic_path(path) as tmp:
        Path(tmp).write_text(page)
    return path
