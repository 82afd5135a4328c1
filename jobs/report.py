"""runs/<id>/report.html: what a run did, on which inputs and settings, and how it compares with the published run it
replaces. One self-contained page (charts are embedded PNGs, no script, nothing fetched), readable at 1280 px
without sideways scrolling: wide data is shown as narrow tables (one row per metric), long text wraps."""

from __future__ import annotations

import base64
import html
import io
import json
import time
from calendar import timegm
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

VS = "vs the published run"   # the header of every comparison column
# the match step's metrics on the stewards' decisions (c360.jobs.steps.step_match), where a run has them
DECISION_METRICS = ("decisions_precision", "decisions_recall", "decisions_f1", "review_sets")

STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em auto;padding:0 1em;max-width:1180px;color:#222}
h2{border-bottom:1px solid #ddd;margin-top:1.6em}
table{border-collapse:collapse;margin:.3em 0 1em;max-width:100%}
caption{caption-side:top;text-align:left;font-weight:600;padding:.3em 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;vertical-align:top}
th{background:#eee}td:first-child,th:first-child,td.t,th.t{text-align:left}
td.t,code{overflow-wrap:anywhere}
.row{display:flex;flex-wrap:wrap;gap:0 2em;align-items:flex-start}
img{max-width:100%;height:auto}
.failed{color:#b00}.succeeded{color:#070}.note{color:#555}"""


def _png(fig, alt: str = "chart") -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return (f'<img alt="{html.escape(alt)}" src="data:image/png;base64,'
            + base64.b64encode(buf.getvalue()).decode() + '">')


# ---- cells -------------------------------------------------------------------------------------------------

def _is_id(column: str) -> bool:
    return column == "id" or column.endswith("_id")


def _fmt(v: Any, column: str = "") -> str:
    """A cell: counts with thousands separators, seconds as `26.4 s`, fractions to 4 places, ids as they are."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)) and "seconds" in column:
        return f"{v:.1f} s"
    if isinstance(v, int):
        return str(v) if _is_id(column) else f"{v:,}"
    if isinstance(v, float):
        if v.is_integer() and abs(v) >= 1000:
            return f"{int(v):,}"
        return f"{v:.2g}" if 0 < abs(v) < 0.001 else f"{v:.4f}"
    return str(v)


def _vs(value: Any, before: Any, column: str = "") -> str:
    """A "vs the published run" cell: the change and the published value, `same`, or `new` (the published run has
    no such value)."""
    if before is None:
        return "" if value is None else "new"
    if value is None:
        return f"was {_fmt(before, column)}"
    numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (value, before))
    if not numbers or value == before:
        return "same" if value == before else f"was {_fmt(before, column)}"
    diff = value - before
    if "seconds" in column:
        change = f"{diff:+.1f} s"
    elif isinstance(diff, int):
        change = f"{diff:+,}"
    else:
        change = f"{diff:+.4f}"
    return f"{change} (was {_fmt(before, column)})"


def _table(rows: list[dict[str, Any]], columns: list[str] | None = None, title: str = "",
           text: tuple[str, ...] = ()) -> str:
    """An HTML table titled `title` (its caption); the `text` columns are left-aligned and wrap anywhere (paths)."""
    caption = f"<caption>{html.escape(title)}</caption>" if title else ""
    if not rows:
        return f"<p><b>{html.escape(title)}</b>: none</p>" if title else "<p><em>none</em></p>"
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))
    cls = {c: ' class="t"' if c in text else "" for c in columns}
    head = "".join(f"<th{cls[c]}>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td{cls[c]}>{html.escape(_fmt(r.get(c), str(c)))}</td>" for c in columns)
                   + "</tr>" for r in rows)
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _row(*tables: str) -> str:
    """Tables (or charts) side by side, wrapping onto the next line when the page is narrow."""
    return '<div class="row">' + "".join(f"<div>{t}</div>" for t in tables if t) + "</div>"


def _scalars(m: dict[str, Any]) -> dict[str, Any]:
    """The values of a metrics dict that fit a table cell (nested dicts and lists left out)."""
    return {k: v for k, v in m.items() if not isinstance(v, (dict, list))}


def _compared(rows: list[dict[str, Any]], before: dict[str, Any] | None, key: str = "metric",
              value: str = "this run") -> list[dict[str, Any]]:
    """`rows` with a VS cell each, from `before` (the published run's values by `key`); unchanged when None."""
    if before is None:
        return rows
    return [{**r, VS: _vs(r.get(value), before.get(r[key]), str(r[key]))} for r in rows]


# ---- charts ------------------------------------------------------------------------------------------------

def histogram_chart(bin_edges: list[float], counts: list[int], title: str, threshold: float | None = None) -> str:
    """Pairs by match probability (log scale), the bins at or above `threshold` (the run's) in the linked colour and
    the threshold drawn."""
    fig, ax = plt.subplots(figsize=(6, 3))
    widths = [b - a for a, b in zip(bin_edges[:-1], bin_edges[1:], strict=True)]
    t = float("inf") if threshold is None else threshold
    # a bin the threshold cuts (0.995 in the last of twenty) is partly linked: its own colour, not a wrong one
    colors = ["#4c78a8" if lo >= t else "#9ecae1" if lo < t < hi else "#bbbbbb"
              for lo, hi in zip(bin_edges[:-1], bin_edges[1:], strict=True)]
    ax.bar(bin_edges[:-1], counts, width=widths, align="edge", edgecolor="black", linewidth=.5, color=colors)
    linked = "blue: linked" + ("; light blue: partly" if "#9ecae1" in colors else "")
    ax.set_yscale("log")
    if threshold is not None:
        ax.axvline(threshold, color="#b00", linestyle="--")
        ax.text(threshold, 0.97, f"threshold {threshold:g} ", color="#b00", ha="right", va="top",
                transform=ax.get_xaxis_transform(), bbox={"facecolor": "white", "edgecolor": "none", "alpha": .8})
    ax.set(title=title, xlabel=f"match probability ({linked})" if threshold is not None else "match probability",
           ylabel="pairs (log)")
    return _png(fig, title)


def pr_informative(curve: list[dict[str, float]]) -> bool:
    """Whether a precision/recall chart says more than its table: three or more thresholds, 20 or more labeled
    matches, and precision or recall moving by 0.01 or more across the thresholds (else it is flat lines)."""
    if len(curve) < 3:
        return False
    first = curve[0]
    if "tp" in first and first["tp"] + first.get("fn", 0) < 20:
        return False
    return any(max(c[k] for c in curve) - min(c[k] for c in curve) >= 0.01 for k in ("precision", "recall"))


def pr_chart(curve: list[dict[str, float]], title: str, threshold: float | None = None) -> str:
    """Precision, recall and F1 by threshold (evenly spaced: the grid is dense near 1), the y axis zoomed to the
    values and the run's threshold drawn."""
    fig, ax = plt.subplots(figsize=(6, 3))
    xs = list(range(len(curve)))
    values = [c[k] for c in curve for k in ("precision", "recall", "f1")]
    for key in ("precision", "recall", "f1"):
        ax.plot(xs, [c[key] for c in curve], label=key, marker=".")
    ax.set_xticks(xs, [f"{c['threshold']:g}" for c in curve])
    pad = max((max(values) - min(values)) * 0.1, 0.005)
    ax.set(title=title, xlabel="match probability threshold", ylim=(max(min(values) - pad, 0), min(max(values) + pad, 1.0)))
    if threshold is not None:
        ts = [c["threshold"] for c in curve]
        at = min(xs, key=lambda i: abs(ts[i] - threshold))
        ax.axvline(at, color="#b00", linestyle="--", label=f"run's threshold {threshold:g}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return _png(fig, title)


def bar_chart(values: dict[str, float], title: str, ylabel: str, horizontal: bool = False) -> str:
    fig, ax = plt.subplots(figsize=(6, 3))
    names, heights = list(values), list(values.values())
    (ax.barh if horizontal else ax.bar)(names, heights, color="#4c78a8")
    ax.set_title(title)
    ax.set_xlabel(ylabel) if horizontal else ax.set_ylabel(ylabel)
    if not horizontal:
        plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    return _png(fig, title)


# ---- the page ----------------------------------------------------------------------------------------------

def render_report(manifest: dict[str, Any], er: dict[str, Any], recsys: dict[str, Any], graph: dict[str, Any],
                  metric: str = "ndcg@10", session_metric: str = "hit@5", realtime: dict[str, Any] | None = None,
                  previous: dict[str, Any] | None = None) -> str:
    """The whole report as one HTML string (no external assets); `metric` is the ndcg@k charted per algorithm,
    `session_metric` the hit@k of the time-ordered evaluation (session model, baseline, transitions), `realtime`
    what the run took from the real-time logs (its realtime.json), `previous` the published run it replaces (as
    c360.jobs.run_report.read_run gives it): every gate value and count is then compared with it."""
    before = previous["manifest"] if previous else None
    parts = _run_section(manifest, before, (previous or {}).get("run_id"))
    parts += _inputs_section(manifest, er)
    if realtime:
        parts += ["<h2>Real-time events</h2>", _realtime_section(realtime)]
    parts += _er_section(er, manifest, previous)
    parts.append("<h2>Recommenders</h2>")
    was = previous.get("recsys") if previous else None
    parts += _holdout_section(recsys.get("metrics") or {}, metric, recsys.get("split") or {},
                              None if was is None else was.get("metrics") or {})
    parts += _time_ordered_section(recsys.get("time_ordered") or {}, session_metric,
                                   None if was is None else (was.get("time_ordered") or {}).get("algorithms") or {})
    parts += _trained_section(manifest)
    parts += _graph_section(graph, (previous or {}).get("graph"))
    parts.append("</body></html>")
    return "\n".join(parts)


def _epoch(stamp: str | None) -> int | None:
    try:
        return timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")) if stamp else None
    except ValueError:
        return None


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 60 else f"{int(seconds // 60)} min {int(seconds % 60)} s"


def _run_section(manifest: dict[str, Any], before: dict[str, Any] | None, before_id: str | None = None) -> list[str]:
    """The page head; the run's status, total time and the run it is compared with (`before`, its manifest, in the
    sibling directory `before_id`); its steps, counts and gates."""
    run_id = html.escape(manifest["run_id"])
    parts = [f"<!doctype html><html><head><meta charset='utf-8'>"
             f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>c360 run {run_id}</title>"
             f"<style>{STYLE}</style></head><body><h1>Nightly run {run_id}</h1>"]
    steps = manifest.get("steps") or {}
    total = sum(s.get("seconds") or 0 for s in steps.values())
    start, end = _epoch(manifest.get("created_at")), _epoch(manifest.get("finished_at"))
    wall = ""
    if start is not None and end is not None and _duration(end - start) != _duration(total):  # a resumed run
        wall = f" ({_duration(end - start)} from start to finish)"
    status = html.escape(str(manifest.get("status")))
    parts.append(f"<p>Status: <b class='{status}'>{status}</b> · started {manifest.get('created_at')}"
                 f" · finished {manifest.get('finished_at') or '-'} · total time <b>{_duration(total)}</b> in steps"
                 f"{wall} · served model: <b>{html.escape(str(manifest.get('served_model') or 'none'))}</b></p>")
    if manifest.get("error"):
        parts.append(f"<p class='failed'>{html.escape(str(manifest['error']))}</p>")
    if before:
        prev = html.escape(str(before_id or before["run_id"]))
        parts.append(f"<p>The <b>{VS}</b> columns compare with run <a href='../{prev}/report.html'>{prev}</a>, "
                     f"published when this run started (its status: {html.escape(str(before.get('status')))}).</p>")
    else:
        parts.append("<p class='note'>No published run before this one: nothing to compare with.</p>")
    before_steps = (before or {}).get("steps") or {}
    rows = [{"step": n, "status": s.get("status"), "seconds": s.get("seconds")} for n, s in steps.items()]
    rows.append({"step": "total", "status": "", "seconds": total})
    if before:
        prev_total = sum(s.get("seconds") or 0 for s in before_steps.values())
        for r in rows:
            was = prev_total if r["step"] == "total" else (before_steps.get(r["step"]) or {}).get("seconds")
            r[VS] = _vs(r["seconds"], was, "seconds")
    counts = []
    for n, s in steps.items():
        was = (before_steps.get(n) or {}).get("rows") or {}
        for i, (k, v) in enumerate((s.get("rows") or {}).items()):
            counts.append({"step": n if i == 0 else "", "count": k, "this run": v,
                           **({VS: _vs(v, was.get(k))} if before else {})})
    parts += ["<h2>Steps</h2>", _row(_table(rows, title="Steps and their time"),
                                     _table(counts, title="Rows counted by each step", text=("count",)))]
    gates = []
    before_gates = (before or {}).get("gates") or {}
    for n, g in (manifest.get("gates") or {}).items():
        row = {"gate": n, "result": "passed" if g.get("passed") else "FAILED", "value": g.get("value"),
               "threshold": g.get("threshold")}
        if before:
            row[VS] = _vs(g.get("value"), (before_gates.get(n) or {}).get("value"))
        gates.append({**row, "detail": g.get("detail")})
    return parts + ["<h2>Quality gates</h2>", _table(gates, title="Quality gates (a failed gate publishes nothing)",
                                                     text=("detail",))]


def _setting(value: Any) -> str:
    if value is None:
        return "not set"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    if isinstance(value, dict):
        return json.dumps(value) if value else "none"
    return f"{value:g}" if isinstance(value, float) else value


def _inputs_section(manifest: dict[str, Any], er: dict[str, Any]) -> list[str]:
    """What the run read (the sources as validated, the ER model's roles and threshold) and every setting it ran
    with (the manifest's config, as `--config` and the environment set it)."""
    config = manifest.get("config") or {}
    nightly = config.get("nightly") or {}
    validated = (manifest.get("steps", {}).get("validate") or {}).get("outputs") or {}
    insurance = validated.get("insurance") or nightly.get("insurance")
    if not nightly.get("insurance"):
        insurance = f"{insurance or 'the warehouse inputs'} (generated: {_fmt(nightly.get('generate_customers'))} " \
                    f"customers, seed {nightly.get('seed')})"
    visits = validated.get("visits") or nightly.get("visits") or "the shipped data"
    inputs = [{"input": "insurance sources", "used": insurance},
              {"input": "visits", "used": f"{visits} (format {validated.get('format') or nightly.get('visits_format')})"}]
    if validated.get("items") or nightly.get("items"):
        inputs.append({"input": "items", "used": validated.get("items") or nightly.get("items")})
    er_cfg = config.get("er") or {}
    if er:
        inputs.append({"input": "ER roles", "used": er.get("config") or "the insurance preset"})
        threshold = er.get("threshold")
        if threshold is not None:
            why = f" ({er['threshold_why']})" if er.get("threshold_why") else ""
            inputs.append({"input": "ER threshold", "used": f"{threshold:g}{why}"})
    if er_cfg.get("labels"):
        inputs.append({"input": "ER labels", "used": ", ".join(map(str, er_cfg["labels"]))})
    parts = ["<h2>Inputs and settings</h2>", _table(inputs, title="Inputs", text=("used",))]
    settings = [_table([{"setting": k, "value": _setting(v)} for k, v in values.items()],
                       title=f"{name} settings", text=("value",))
                for name, values in config.items() if isinstance(values, dict)]
    return parts + [_row(*settings)]


def _realtime_section(state: dict[str, Any]) -> str:
    """What the run took from the real-time logs, and what it refused (quarantine.jsonl: by field at fault)."""
    rows = [{"log": "events", "segments read": _segments(state, "events"), "records kept": state.get("events"),
             "quarantined": state.get("quarantined", 0), "repeated event_ids dropped": state.get("duplicates", 0)},
            {"log": "customers", "segments read": _segments(state, "customers"), "records kept": state.get("committed"),
             "quarantined": state.get("customers_quarantined", 0), "repeated event_ids dropped": None}]
    out = _table(rows, title="Real-time logs read by this run")
    by_field = state.get("quarantined_by_field") or {}
    if by_field:
        out += ("<p>Logged events no rule allows were quarantined into <code>quarantine.jsonl</code>, never trained "
                "on:</p>" + _table([{"field": k, "events": v} for k, v in sorted(by_field.items())],
                                   title="Quarantined events by field at fault"))
    return out


def _segments(state: dict[str, Any], log: str) -> str:
    if f"{log}_through" not in state:
        return ""
    after, through = int(state.get(f"{log}_after") or 0), int(state[f"{log}_through"])
    if through <= after:
        return "none"
    return str(through) if through == after + 1 else f"{after + 1}-{through}"


def _er_section(er: dict[str, Any], manifest: dict[str, Any], previous: dict[str, Any] | None) -> list[str]:
    """Entity resolution: matching counts, the evaluation (all records and park accounts, one row per metric), the
    match probability histogram with the threshold, precision/recall on the labels, the unparseable values."""
    parts = ["<h2>Entity resolution</h2>"]
    match = (manifest.get("steps", {}).get("match") or {}).get("metrics") or {}
    before = None
    if previous:
        before = (previous["manifest"].get("steps", {}).get("match") or {}).get("metrics") or {}
    keys = ("engine", "threshold", "pairs_scored", "pairs_linked", "relatives_guarded", "clusters", "prior")
    matching = _compared([{"metric": k, "this run": match[k]} for k in keys if k in match], before)
    tables = [_table(matching, title="Matching") if matching else ""]
    # the stewards' decisions (the review queue's answers the match trained on): precision / recall measured on
    # them at the threshold used, and the sets drawn for the next reviews
    decided = _compared([{"metric": k, "this run": match[k]} for k in DECISION_METRICS if k in match], before)
    if decided:
        tables.append(_table(decided, title="Stewards' decisions (labelled precision / recall at the threshold)"))
    evaluation = er.get("evaluation") or {}
    if evaluation:
        tables.append(_table(_evaluation_rows(evaluation, ((previous or {}).get("er") or {}).get("evaluation"),
                                              previous is not None),
                             title="Evaluation against the truth (pairs; accounts: the pairs that hold a park account)"))
    curve = er.get("pr_curve") or []
    if curve:
        at = min(curve, key=lambda c: abs(c["threshold"] - er["threshold"])) if er.get("threshold") is not None else None
        rows = [{"threshold": c["threshold"], "precision": c["precision"], "recall": c["recall"], "f1": c["f1"],
                 **{k: c[k] for k in ("tp", "fp", "fn") if k in c}, "used": "yes" if c is at else ""} for c in curve]
        labeled = f" ({curve[0]['tp'] + curve[0]['fn']:,} labeled matches)" if "tp" in curve[0] else ""
        tables.append(_table(rows, title=f"Precision / recall on the labels by threshold{labeled}"))
    parts.append(_row(*tables))
    if er.get("labels"):
        parts.append(_labels_table(er["labels"]))
    charts = []
    if er.get("histogram"):
        charts.append(histogram_chart(er["histogram"]["bin_edges"], er["histogram"]["counts"],
                                      "Match probability of candidate pairs", threshold=er.get("threshold")))
    if curve and pr_informative(curve):
        charts.append(pr_chart(curve, "Precision / recall on the labels by threshold", threshold=er.get("threshold")))
    elif curve:
        charts.append("<p class='note'>No precision/recall chart: on these labels precision and recall barely move "
                      "across the thresholds (see the table).</p>")
    parts.append(_row(*charts))
    if er.get("invalid_values"):
        parts.append(_table([{"column": k, "count": v} for k, v in er["invalid_values"].items()],
                            title="Unparseable values treated as missing"))
    if er.get("id_changes"):
        parts += _id_changes_section(er["id_changes"])
    return parts


def _labels_table(usage: list[dict[str, Any]]) -> str:
    """How the match used each labels file (its report.json's training.labels)."""
    rows = [{"file": u.get("file"), "pairs": u.get("pairs"), "matches": u.get("matches"), "how": u.get("how"),
             "used for": ", ".join(map(str, u.get("used_for") or ()))} for u in usage]
    return _table(rows, title="How each labels file was used", text=("file", "how", "used for"))


def _evaluation_rows(evaluation: dict[str, Any], before: dict[str, Any] | None, compare: bool) -> list[dict]:
    """One row per metric: all records, and the park accounts where evaluated, each with its VS column."""
    before = before or {}
    accounts, was_accounts = evaluation.get("accounts") or {}, before.get("accounts") or {}
    rows = []
    for k in dict.fromkeys([*_scalars(evaluation), *_scalars(accounts)]):
        row = {"metric": k, "all records": evaluation.get(k)}
        if compare:
            row[VS] = _vs(evaluation.get(k), before.get(k), k)
        if accounts:
            row["accounts"] = accounts.get(k)
            if compare:
                row[f"accounts {VS}"] = _vs(accounts.get(k), was_accounts.get(k), k)
        rows.append(row)
    return rows


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


def _chosen_notes(metrics: dict[str, Any]) -> str:
    """What each automatically chosen model chose (too long for a table cell)."""
    notes = [f"<li><b>{html.escape(a)}</b> chose <code>{html.escape(str(m['chosen']))}</code></li>"
             for a, m in metrics.items() if m.get("chosen")]
    return f"<ul>{''.join(notes)}</ul>" if notes else ""


def _algorithm_rows(metrics: dict[str, Any], metric: str, before: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One row per algorithm (its scalar metrics but what it chose: a note), and, when there is a published run
    (`before`: its metrics by algorithm), `metric` compared with it (the gated one; a column per metric would not
    fit the page)."""
    rows = []
    for a, m in metrics.items():
        row = {"algorithm": a, **{k: v for k, v in _scalars(m).items() if k != "chosen"}}
        if before is not None:
            row[f"{metric} {VS}"] = _vs(m.get(metric), (before.get(a) or {}).get(metric), metric)
        rows.append(row)
    return rows


def _holdout_section(metrics: dict[str, Any], metric: str, split: dict[str, Any] | None = None,
                     before: dict[str, Any] | None = None) -> list[str]:
    """Each algorithm's metrics on the holdout, `metric` (an ndcg@k) compared with the published run's (`before`,
    its metrics by algorithm; None: no published run) and charted."""
    if not metrics:
        return []
    split = split or {}
    how = ""
    if split.get("holdout") is not None:
        how = (f": {split['holdout']:.0%} of the interactions held out (seed {split.get('seed')}), "
               f"{_fmt(split.get('test_users'))} users tested")
    rows = _algorithm_rows(metrics, metric, before)
    parts = [_table(rows, title=f"Holdout evaluation{how}"), _chosen_notes(metrics)]
    ndcg = {a: m.get(metric) for a, m in metrics.items() if m.get(metric) is not None}
    if ndcg:
        label = metric.replace("ndcg", "NDCG")
        parts.append(bar_chart(ndcg, f"{label} on the holdout", label))
    return parts


def _time_ordered_section(timed: dict[str, Any], session_metric: str,
                          before: dict[str, Any] | None = None) -> list[str]:
    """The next-attraction evaluation (each user's last trip held out), `session_metric` (a hit@k) compared with the
    published run's (`before`, its algorithms' metrics; None: no published run) and charted."""
    if not timed.get("algorithms"):
        return []
    split = timed.get("split") or {}
    title = (f"Next attraction, time-ordered ({split.get('protocol')}: trained on every trip but each user's last; "
             f"{_fmt(split.get('steps'))} steps of {_fmt(split.get('test_trips'))} last trips)")
    rows = _algorithm_rows(timed["algorithms"], session_metric, before)
    parts = [f"<h3>{html.escape(title)}</h3>", _table(rows, title=f"{session_metric} and MRR of the next attraction"),
             _chosen_notes(timed["algorithms"])]
    hits = {a: m.get(session_metric) for a, m in timed["algorithms"].items() if m.get(session_metric) is not None}
    if hits:
        parts.append(bar_chart(hits, f"{session_metric} of the next attraction", session_metric))
    return parts


def _trained_section(manifest: dict[str, Any]) -> list[str]:
    """Every model trained, the served one, what the chosen ones chose and where implicit ALS trained (--gpu auto)
    and why not on the GPU; a list, not a table of mostly empty cells."""
    models = manifest.get("models") or {}
    if not models:
        return []
    items, plain = [], []
    for a, m in models.items():
        notes = []
        if a == manifest.get("served_model"):
            notes.append("<b>served</b>")
        if m.get("chosen"):
            notes.append(f"chose <code>{html.escape(str(m['chosen']))}</code>")
        if m.get("device"):
            why = f" ({html.escape(str(m['gpu_reason']))})" if m.get("gpu_reason") else ""
            notes.append(f"trained on {html.escape(str(m['device']))}{why}")
        if notes:
            items.append(f"<li><b>{html.escape(a)}</b>: {'; '.join(notes)}</li>")
        else:
            plain.append(html.escape(a))
    if plain:
        items.append(f"<li>{', '.join(plain)}: trained, nothing to note</li>")
    return ["<h3>Trained models</h3>", f"<ul>{''.join(items)}</ul>"]


def _graph_section(graph: dict[str, Any], before: dict[str, Any] | None) -> list[str]:
    """The graph's vertices and edges counted by label, each compared with the published run's."""
    counts = graph.get("counts") or {}
    was_counts = (before or {}).get("counts") if before is not None else None
    tables = []
    for kind in ("vertices", "edges"):
        by_label = counts.get(kind) or {}
        if not by_label:
            continue
        rows = [{"label": k, "count": v} for k, v in sorted(by_label.items())]
        rows.append({"label": "total", "count": sum(by_label.values())})
        if was_counts is not None:
            was = was_counts.get(kind) or {}
            was = {**was, "total": sum(was.values()) if was else None}
            rows = [{**r, VS: _vs(r["count"], was.get(r["label"]))} for r in rows]
        tables.append(_table(rows, title=f"{kind.title()} by label"))
    return ["<h2>Graph</h2>", _row(*tables)] if tables else []
