"""runs/<id>/report.html: metric tables and plots (embedded PNG), readable in any browser."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return '<img alt="chart" src="data:image/png;base64,' + base64.b64encode(buf.getvalue()).decode() + '">'


def _table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    if not rows:
        return "<p><em>none</em></p>"
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return "" if v is None else str(v)


def histogram_chart(bin_edges: list[float], counts: list[int], title: str) -> str:
    fig, ax = plt.subplots(figsize=(6, 3))
    widths = [b - a for a, b in zip(bin_edges[:-1], bin_edges[1:], strict=True)]
    ax.bar(bin_edges[:-1], counts, width=widths, align="edge", edgecolor="black")
    ax.set_yscale("log")
    ax.set(title=title, xlabel="match probability", ylabel="pairs (log)")
    return _png(fig)


def pr_chart(curve: list[dict[str, float]], title: str) -> str:
    fig, ax = plt.subplots(figsize=(6, 3))
    xs = [c["threshold"] for c in curve]
    for key in ("precision", "recall", "f1"):
        ax.plot(xs, [c[key] for c in curve], label=key, marker=".")
    ax.set(title=title, xlabel="match probability threshold", ylim=(0, 1.02))
    ax.legend()
    return _png(fig)


def bar_chart(values: dict[str, float], title: str, ylabel: str, horizontal: bool = False) -> str:
    fig, ax = plt.subplots(figsize=(6, 3))
    names, heights = list(values), list(values.values())
    (ax.barh if horizontal else ax.bar)(names, heights, color="#4c78a8")
    ax.set_title(title)
    ax.set_xlabel(ylabel) if horizontal else ax.set_ylabel(ylabel)
    if not horizontal:
        plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    return _png(fig)


STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#eee}h2{border-bottom:1px solid #ddd}
.failed{color:#b00}.succeeded{color:#070}"""


def _realtime_section(state: dict[str, Any]) -> str:
    """What the run took from the real-time logs, and what it refused (quarantine.jsonl: by field at fault)."""
    rows = [{"log": "events", "segments read": _segments(state, "events"), "records kept": state.get("events"),
             "quarantined": state.get("quarantined", 0), "repeated event_ids dropped": state.get("duplicates", 0)},
            {"log": "customers", "segments read": _segments(state, "customers"), "records kept": state.get("committed"),
             "quarantined": state.get("customers_quarantined", 0), "repeated event_ids dropped": None}]
    out = _table(rows)
    by_field = state.get("quarantined_by_field") or {}
    if by_field:
        out += ("<p>Logged events no rule allows were quarantined into <code>quarantine.jsonl</code>, never trained "
                "on:</p>" + _table([{"field": k, "events": v} for k, v in sorted(by_field.items())]))
    return out


def _segments(state: dict[str, Any], log: str) -> str:
    if f"{log}_through" not in state:
        return ""
    return f"{int(state.get(f'{log}_after') or 0) + 1}-{state[f'{log}_through']}"


def render_report(manifest: dict[str, Any], er: dict[str, Any], recsys: dict[str, Any], graph: dict[str, Any],
                  metric: str = "ndcg@10", session_metric: str = "hit@5", realtime: dict[str, Any] | None = None) -> str:
    """The whole report as one HTML string (no external assets); `metric` is the ndcg@k charted per algorithm,
    `session_metric` the hit@k of the time-ordered evaluation (session model, baseline, transitions), `realtime`
    what the run took from the real-time logs (its realtime.json)."""
    parts = _run_section(manifest)
    if realtime:
        parts += ["<h2>Real-time events</h2>", _realtime_section(realtime)]
    parts += _er_section(er)
    parts.append("<h2>Recommenders</h2>")
    parts += _holdout_section(recsys.get("metrics") or {}, metric)
    parts += _time_ordered_section(recsys.get("time_ordered") or {}, session_metric)
    parts += _trained_section(manifest)
    parts += _graph_section(graph)
    parts.append("</body></html>")
    return "\n".join(parts)


def _scalars(m: dict[str, Any]) -> dict[str, Any]:
    """The values of a metrics dict that fit a table cell (nested dicts and lists left out)."""
    return {k: v for k, v in m.items() if not isinstance(v, (dict, list))}


def _run_section(manifest: dict[str, Any]) -> list[str]:
    """The page head, the run's status, its steps and its quality gates."""
    run_id = html.escape(manifest["run_id"])
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>c360 run {run_id}</title>"
             f"<style>{STYLE}</style></head><body><h1>Nightly run {run_id}</h1>"]
    parts.append(f"<p>Status: <b class='{manifest['status']}'>{manifest['status']}</b> · created {manifest['created_at']}"
                 f" · served model: <b>{html.escape(str(manifest.get('served_model')))}</b></p>")
    steps = [{"step": n, "status": s.get("status"), "seconds": s.get("seconds"),
              "rows": ", ".join(f"{k}={v}" for k, v in (s.get("rows") or {}).items())}
             for n, s in manifest["steps"].items()]
    parts += ["<h2>Steps</h2>", _table(steps)]
    gates = [{"gate": n, **g} for n, g in (manifest.get("gates") or {}).items()]
    return parts + ["<h2>Quality gates</h2>", _table(gates, ["gate", "passed", "value", "threshold", "detail"])]


def _er_section(er: dict[str, Any]) -> list[str]:
    """Entity resolution: its evaluation, the match probability histogram, the PR curve, the unparseable values."""
    parts = ["<h2>Entity resolution</h2>"]
    if er.get("evaluation"):
        parts.append(_table([_scalars(er["evaluation"])]))
        if er["evaluation"].get("accounts"):
            parts += ["<h3>Park accounts (the pairs that hold an account)</h3>",
                      _table([_scalars(er["evaluation"]["accounts"])])]
    if er.get("histogram"):
        parts.append(histogram_chart(er["histogram"]["bin_edges"], er["histogram"]["counts"],
                                     "Match probability of candidate pairs"))
    if er.get("pr_curve"):
        parts.append(pr_chart(er["pr_curve"], "Precision / recall by threshold on the labeled pairs"))
    if er.get("invalid_values"):
        parts += ["<h3>Unparseable values treated as missing</h3>",
                  _table([{"column": k, "count": v} for k, v in er["invalid_values"].items()])]
    if er.get("id_changes"):
        parts += _id_changes_section(er["id_changes"])
    return parts


def _id_changes_section(changes: dict[str, Any]) -> list[str]:
    """What became of the previous output's match_ids: counts by change, the largest merges and splits."""
    parts = ["<h3>Match ids since the previous output</h3>",
             f"<p>Against <code>{html.escape(str(changes.get('previous')))}</code>: every id of it kept, merged "
             f"into another, split (its largest part keeps it) or retired (no record left), and the new ids "
             f"(<code>matched.parquet.id_changes.parquet</code>).</p>",
             _table([{"change": k, "ids": v} for k, v in (changes.get("counts") or {}).items()])]
    merges = [{"match_id": m["match_id"], "ids merged into it": len(m["merged_from"]),
               "merged from": ", ".join(map(str, m["merged_from"])), "records now": m.get("records")}
              for m in changes.get("largest_merges") or []]
    if merges:
        parts += ["<h4>Largest merges</h4>", _table(merges)]
    splits = [{"match_id": x["match_id"], "split into": ", ".join(map(str, x["split_into"])),
               "records before": x["records_before"], "records now": x["records_after"]}
              for x in changes.get("largest_splits") or []]
    if splits:
        parts += ["<h4>Largest splits</h4>", _table(splits)]
    return parts


def _holdout_section(metrics: dict[str, Any], metric: str) -> list[str]:
    """Each algorithm's metrics on the holdout, and `metric` (an ndcg@k) charted."""
    if not metrics:
        return []
    parts = [_table([{"algorithm": a, **_scalars(m)} for a, m in metrics.items()])]
    ndcg = {a: m.get(metric) for a, m in metrics.items() if m.get(metric) is not None}
    if ndcg:
        label = metric.replace("ndcg", "NDCG")
        parts.append(bar_chart(ndcg, f"{label} on the holdout", label))
    return parts


def _time_ordered_section(timed: dict[str, Any], session_metric: str) -> list[str]:
    """The next-attraction evaluation (each user's last trip held out), and `session_metric` (a hit@k) charted."""
    if not timed.get("algorithms"):
        return []
    split = timed.get("split") or {}
    parts = [f"<h3>Next attraction, time-ordered ({html.escape(str(split.get('protocol')))}: trained on every "
             f"trip but each user's last; {split.get('steps')} steps of {split.get('test_trips')} last trips)</h3>"]
    parts.append(_table([{"algorithm": a, **_scalars(m)} for a, m in timed["algorithms"].items()]))
    hits = {a: m.get(session_metric) for a, m in timed["algorithms"].items() if m.get(session_metric) is not None}
    if hits:
        parts.append(bar_chart(hits, f"{session_metric} of the next attraction", session_metric))
    return parts


def _trained_section(manifest: dict[str, Any]) -> list[str]:
    """Which device each model trained on, and why not the GPU (implicit ALS: --gpu auto)."""
    trained = [{"model": a, "served": a == manifest.get("served_model"), "chosen": m.get("chosen"),
                "device": m.get("device"), "GPU": m.get("gpu_reason")}
               for a, m in (manifest.get("models") or {}).items()]
    return ["<h3>Trained models</h3>", _table(trained)] if trained else []


def _graph_section(graph: dict[str, Any]) -> list[str]:
    """The graph's vertices and edges counted by label."""
    parts = ["<h2>Graph</h2>"]
    for kind in ("vertices", "edges"):
        counts = (graph.get("counts") or {}).get(kind) or {}
        if counts:
            parts.append(_table([{"label": k, "count": v} for k, v in sorted(counts.items())]))
            parts.append(bar_chart(dict(sorted(counts.items())), f"{kind.title()} by label", "count", horizontal=True))
    return parts
